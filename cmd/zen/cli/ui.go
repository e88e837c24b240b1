package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/ui"
)

func newUI(g *globals) *cobra.Command {
	var addr, stack string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve a read-only web dashboard of the runs, models, lineage and metrics",
		Long: `UI serves a local web page over the state ref and the artifact store:
runs with their step graphs, logs, outputs and metrics; models with their
versions, stages, history, gates and signatures; a version's lineage;
metrics charted across runs; two runs compared; pull-request previews;
and the audit of a stage. It is read-only (anything but GET and HEAD is
refused), fetches nothing from the internet, and reloads a page when the
state ref moves.

It listens on 127.0.0.1 and a free port unless --addr says otherwise, and
warns when the address is not a loopback one: the dashboard has no login.`,
		Example: "  zen ui\n  zen ui --addr 127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			h, err := ui.New(sess.Project, ui.Options{Stack: stack})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w", addr, err)
			}
			// Named with the host as given ("0.0.0.0", not Go's "[::]"),
			// and the port listened on.
			host, _, _ := net.SplitHostPort(addr)
			if host == "" {
				host = "0.0.0.0"
			}
			where := net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			if !loopback(ln.Addr()) {
				fmt.Fprintf(g.stderr, "zen ui: warning: %s is not a loopback address: the dashboard is reachable from other machines, without a login\n", where)
			}
			fmt.Fprintf(g.stdout, "zen ui: serving http://%s/ (read-only; Ctrl-C stops)\n", where)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return err
			case <-cmd.Context().Done():
				c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(c); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen on `HOST:PORT` (port 0: a free one)")
	cmd.Flags().StringVar(&stack, "stack", "", "read logs and outputs from this stack's artifact store (default: each run's own)")
	return cmd
}

// loopback says whether a listener's address is a loopback one, reachable
// from this machine only.
func loopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
