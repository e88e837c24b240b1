// Package testregistry starts distribution's docker-registry program on
// loopback, for the tests that want a real registry in a process of its
// own.
package testregistry

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Start runs bin (the docker-registry program) with its storage under dir
// on a free loopback port. It returns the registry's host:port once it
// answers, and a function that stops it.
func Start(bin, dir string) (addr string, stop func(), err error) {
	// A free port: the registry takes an address, not a listener.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = l.Addr().String()
	l.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, stop, nil
			}
		}
		select {
		case err := <-exited:
			return "", nil, fmt.Errorf("docker-registry exited: %v\n%s", err, out.String())
		case <-ctx.Done():
			stop()
			return "", nil, fmt.Errorf("docker-registry not ready at %s: %v\n%s", addr, ctx.Err(), out.String())
		case <-tick.C:
		}
	}
}
