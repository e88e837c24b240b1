package testscript

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdFreePort sets VAR to a TCP port free on 127.0.0.1 now, for a server
// the script starts next (zen ui --addr 127.0.0.1:$VAR).
//
//	freeport VAR
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ts.Check(ln.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdHTTPGet requests URL and writes the response's body to stdout, for
// stdout to match; with -headers, the headers first, a line each. It
// fails unless the status is -status's (200 by default). While the server
// is not listening yet (a background command starting), it tries again
// for up to 30 s.
//
//	httpget [-method M] [-status N] [-headers] URL
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("httpget", flag.ContinueOnError)
	method := fs.String("method", "GET", "")
	status := fs.Int("status", 200, "")
	headers := fs.Bool("headers", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || neg {
		ts.Fatalf("usage: httpget [-method M] [-status N] [-headers] URL")
	}
	url := fs.Arg(0)
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, err := http.NewRequest(*method, url, nil)
		ts.Check(err)
		resp, err = http.DefaultClient.Do(req)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			ts.Fatalf("httpget %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if *headers {
		for k, vs := range resp.Header {
			for _, v := range vs {
				fmt.Fprintf(ts.Stdout(), "%s: %s\n", k, v)
			}
		}
	}
	ts.Stdout().Write(body)
	if resp.StatusCode != *status {
		ts.Fatalf("httpget %s: status %d, want %d", url, resp.StatusCode, *status)
	}
}
