package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigstore "github.com/sigstore/sigstore/pkg/signature"
)

// ErrWrongPassword is wrapped by LoadSigner's error when the password does
// not decrypt the private key.
var ErrWrongPassword = errors.New("wrong password for the private key")

// PEM block types of cosign's encrypted private keys: the current one, and
// the one cosign wrote before it moved its key code into sigstore.
const (
	sigstoreKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
	plainKeyType    = "PRIVATE KEY" // PKCS#8, unencrypted
)

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's formats: the
// private key as an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block (scrypt and
// NaCl secretbox over PKCS#8, as `cosign generate-key-pair` writes it),
// encrypted with password, and the public key as a "PUBLIC KEY" PEM block.
// A nil password is taken as the empty one: an unencrypted key would be
// refused by the cosign CLI.
func GenerateKeyPair(password []byte) (private, public []byte, err error) {
	if password == nil {
		password = []byte{}
	}
	private, public, err = cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return private, public, nil
}

// GenerateOpenKeyPair makes an ECDSA P-256 key pair like GenerateKeyPair,
// encrypted with the empty password and scrypt's cheapest parameters that
// cosign reads (N=2^15, r=8, p=1, go-securesystemslib's Legacy): the
// password protects nothing, the file's mode does, so the key loads in a
// fraction of the time the cosign CLI's default parameters take, and the
// CLI still signs with it (COSIGN_PASSWORD= cosign sign --key ...).
func GenerateOpenKeyPair() (private, public []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	if private, err = encryptPKCS8(der, nil, encrypted.Legacy); err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	if public, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public()); err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return private, public, nil
}

// GeneratePlainKeyPair makes an ECDSA P-256 key pair whose private key is
// an unencrypted PKCS#8 "PRIVATE KEY" PEM block, as zen wrote the local
// stack's key before it wrote cosign's format. The cosign CLI refuses such
// a key ("unsupported pem type"); LoadSigner still reads it, and
// ConvertPlainKey rewrites it in cosign's format.
func GeneratePlainKeyPair() (private, public []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	if private, err = cryptoutils.MarshalPrivateKeyToPEM(priv); err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	if public, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public()); err != nil {
		return nil, nil, fmt.Errorf("generate key pair: %w", err)
	}
	return private, public, nil
}

// IsPlainKey reports whether privatePEM is an unencrypted PKCS#8 key, which
// the cosign CLI does not read.
func IsPlainKey(privatePEM []byte) bool {
	block, _ := pem.Decode(privatePEM)
	return block != nil && block.Type == plainKeyType
}

// ConvertPlainKey rewrites an unencrypted PKCS#8 "PRIVATE KEY" PEM block as
// cosign's "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted with password: with
// the cheapest scrypt parameters cosign reads when the password is empty
// (see GenerateOpenKeyPair), with the CLI's own otherwise. The key, and so
// its public half, is unchanged.
func ConvertPlainKey(privatePEM, password []byte) ([]byte, error) {
	block, _ := pem.Decode(privatePEM)
	if block == nil || block.Type != plainKeyType {
		return nil, fmt.Errorf("convert private key: not a %q PEM block", plainKeyType)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		return nil, fmt.Errorf("convert private key: %w", err)
	}
	level := encrypted.Standard
	if len(password) == 0 {
		level = encrypted.Legacy
	}
	out, err := encryptPKCS8(block.Bytes, password, level)
	if err != nil {
		return nil, fmt.Errorf("convert private key: %w", err)
	}
	return out, nil
}

// encryptPKCS8 encrypts a PKCS#8 DER key as cosign does (scrypt and NaCl
// secretbox, go-securesystemslib's JSON) in an "ENCRYPTED SIGSTORE
// PRIVATE KEY" PEM block.
func encryptPKCS8(der, password []byte, level encrypted.KDFParameterStrength) ([]byte, error) {
	if password == nil {
		password = []byte{}
	}
	enc, err := encrypted.EncryptWithCustomKDFParameters(der, password, level)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: sigstoreKeyType, Bytes: enc}), nil
}

// Signer signs with a private key. Make one with LoadSigner.
type Signer struct {
	sv sigstore.SignerVerifier
}

// LoadSigner decrypts a private key PEM block written by GenerateKeyPair or
// by `cosign generate-key-pair` ("ENCRYPTED SIGSTORE PRIVATE KEY", or the
// older "ENCRYPTED COSIGN PRIVATE KEY"), or reads an unencrypted PKCS#8
// "PRIVATE KEY" (GeneratePlainKeyPair's; the password is not used). A
// password that does not decrypt it gives an error wrapping
// ErrWrongPassword. A nil password is taken as the empty one.
func LoadSigner(privatePEM, password []byte) (*Signer, error) {
	block, _ := pem.Decode(privatePEM)
	if block == nil {
		return nil, errors.New("load private key: no PEM block")
	}
	if block.Type != sigstoreKeyType && block.Type != cosignKeyType && block.Type != plainKeyType {
		return nil, fmt.Errorf("load private key: PEM type %q is not a cosign private key (want %q)", block.Type, sigstoreKeyType)
	}
	if password == nil {
		password = []byte{}
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(privatePEM, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		// go-securesystemslib has no sentinel for this: its secretbox
		// failure is the only error with this text.
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, fmt.Errorf("load private key: %w", ErrWrongPassword)
		}
		return nil, fmt.Errorf("load private key: %w", err)
	}
	sv, err := sigstore.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	return &Signer{sv: sv}, nil
}

// Public returns the verifier of the signer's signatures.
func (s *Signer) Public() *Verifier {
	return &Verifier{v: s.sv}
}

// sign returns the signature of message (ASN.1 DER for ECDSA).
func (s *Signer) sign(message []byte) ([]byte, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(message))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// Verifier checks signatures against a public key. Make one with
// LoadVerifier or Signer.Public.
type Verifier struct {
	v sigstore.Verifier
}

// LoadVerifier reads a public key PEM block ("PUBLIC KEY", as cosign writes
// cosign.pub).
func LoadVerifier(publicPEM []byte) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicPEM)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	v, err := sigstore.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	return &Verifier{v: v}, nil
}

// PEM returns the public key as a "PUBLIC KEY" PEM block, as cosign writes
// cosign.pub.
func (v *Verifier) PEM() ([]byte, error) {
	pub, err := v.v.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// Checker decides whether sig is a good signature of message. Verify,
// VerifyAttestation and VerifyAttestations take one: *Verifier, a public
// key, is the one zen has; keyless verification (a certificate and a
// transparency log) would be another.
type Checker interface {
	CheckSignature(sig, message []byte) error
}

// CheckSignature implements Checker: sig must be a signature of message by
// the key.
func (v *Verifier) CheckSignature(sig, message []byte) error {
	return v.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(message))
}

// verify reports whether sig is a signature of message by c.
func verify(c Checker, sig, message []byte) bool { return c.CheckSignature(sig, message) == nil }

// Equal reports whether v and w check signatures against the same public
// key.
func (v *Verifier) Equal(w *Verifier) bool {
	a, err := v.PEM()
	if err != nil {
		return false
	}
	b, err := w.PEM()
	return err == nil && bytes.Equal(a, b)
}
