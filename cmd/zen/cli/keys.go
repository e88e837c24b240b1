package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
)

func newKeys(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make signing keys",
	}
	var prefix string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a cosign key pair: the repository's, or PREFIX.key and PREFIX.pub",
		Long: `Generate writes an ECDSA P-256 key pair in cosign's formats, which the
cosign CLI reads: the private key encrypted with $COSIGN_PASSWORD, and the
public key.

COSIGN_PASSWORD must be set, as cosign's own generate-key-pair asks for a
password: set it empty (COSIGN_PASSWORD= zen keys generate) for a key
whose file's mode is its only protection.

In a repository, without --prefix, it makes the repository's key pair,
which every stack without a signer signs with: .zen/keys/cosign.key
(ignored by git) and cosign.pub at the root (commit it). With --prefix it
writes PREFIX.key and PREFIX.pub, and refuses a PREFIX.key inside the work
tree that git does not ignore: git add -A would commit it. Hand such a key
to zen as a secret: signer: {flavor: "cosign", key: {secret: "cosign_key"},
public_key: "PREFIX.pub"}.`,
		Example: "  COSIGN_PASSWORD=... zen keys generate\n  COSIGN_PASSWORD=... zen keys generate --prefix ~/keys/release",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password, ok := os.LookupEnv("COSIGN_PASSWORD")
			if !ok {
				return errors.New("COSIGN_PASSWORD is not set: set the password to encrypt the private key with (COSIGN_PASSWORD=... zen keys generate), or set it empty for a key with no password (COSIGN_PASSWORD= zen keys generate)")
			}
			priv, pub, err := zen.GenerateKeys(g.root(), prefix, []byte(password))
			if err != nil {
				return err
			}
			protected := "encrypted"
			if password == "" {
				protected = "no password"
			}
			fmt.Fprintf(g.stdout, "wrote %s (private, %s) and %s\n", priv, protected, pub)
			return nil
		},
	}
	gen.Flags().StringVar(&prefix, "prefix", "", "write `PREFIX`.key and PREFIX.pub (default: the repository's key pair, or cosign outside a repository)")
	cmd.AddCommand(gen)
	return cmd
}
