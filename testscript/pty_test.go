package testscript

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/creack/pty"
)

// ptyMain is the program pty, which scripts run as `exec pty PROGRAM
// ARGS...`: it runs the program with a pseudo-terminal of 100 columns
// and 40 rows as its standard input, output and error, and copies what
// the program writes on it to its own standard output, each CR LF the
// terminal made of a newline written back as LF, so that `stdout`
// assertions read it as lines; the escapes are kept. It exits as the
// program does.
func ptyMain() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pty PROGRAM [ARGS...]")
		return 2
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 100, Rows: 40})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pty:", err)
		return 2
	}
	defer f.Close()
	var out bytes.Buffer
	// Read until the program and whatever it left holding the terminal
	// are gone: then the read fails with EIO.
	if _, err := io.Copy(&out, f); err != nil && !errors.Is(err, syscall.EIO) {
		fmt.Fprintln(os.Stderr, "pty: read:", err)
	}
	os.Stdout.Write(bytes.ReplaceAll(out.Bytes(), []byte("\r\n"), []byte("\n")))
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "pty:", err)
		return 2
	}
	return 0
}
