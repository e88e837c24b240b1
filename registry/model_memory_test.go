package registry

import (
	"bufio"
	"context"
	"fmt"
	"github.com/zen-dev/zen/internal/testregistry"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// registryProcessEnv makes TestRegistryProcess serve a registry.
const registryProcessEnv = "ZEN_TEST_REGISTRY_PROCESS"

// TestRegistryProcess is not a test: run in a process of its own, it serves
// an in-process registry, prints its address and serves until its stdin is
// closed. go-containerregistry's registry holds uploads in memory, so a
// test that measures the client's heap keeps it out of its own process.
func TestRegistryProcess(t *testing.T) {
	if os.Getenv(registryProcessEnv) == "" {
		t.Skip("serves a registry for TestPushModelMemory")
	}
	h := ggcrregistry.New(
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
		ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(t.TempDir())),
	)
	srv := httptest.NewServer(h)
	defer srv.Close()
	fmt.Println(srv.Listener.Addr())
	io.Copy(io.Discard, os.Stdin)
}

// startRegistryProcess starts a registry in a process of its own and
// returns its host:port: Debian's docker-registry (distribution 2.8), which
// streams uploads to disk, when it is installed, else TestRegistryProcess.
func startRegistryProcess(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("docker-registry"); err == nil {
		return startDockerRegistry(t, bin)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryProcess$")
	cmd.Env = append(os.Environ(), registryProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() {
		io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	if err != nil {
		t.Fatalf("registry process: %v", err)
	}
	return strings.TrimSpace(line)
}

// startDockerRegistry runs the docker-registry program bin on a free
// loopback port until the test ends, and returns its host:port once it
// answers.
func startDockerRegistry(t *testing.T, bin string) string {
	t.Helper()
	addr, stop, err := testregistry.Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// peakHeap runs f and returns the most heap in use, sampled every 2 ms.
func peakHeap(f func()) (peak, base uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak = ms.HeapInuse, ms.HeapInuse
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak, base
}

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t testing.TB, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err == nil {
		err = f.Truncate(size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestPushModelMemory checks that PushModel streams: pushing 512 MiB keeps
// the heap under 100 MB.
func TestPushModelMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 2 GiB in all")
	}
	const size, limit = 512 << 20, 100e6
	ctx := context.Background()
	addr := startRegistryProcess(t)
	if _, err := url.Parse("http://" + addr); err != nil || addr == "" {
		t.Fatalf("registry process address %q", addr)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sparseFile(t, filepath.Join(dir, "model.safetensors"), size)
	writeTree(t, dir, map[string]string{"config.json": "{}"})
	file := filepath.Join(dir, "model.safetensors")

	tests := []struct {
		name, store, path string
	}{
		{"remote file", "remote", file},
		{"remote dir", "remote", dir},
		{"layout file", "layout", file},
		{"layout dir", "layout", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ModelStore
			if tt.store == "remote" {
				rs, err := OpenRemote(addr + "/ml")
				if err != nil {
					t.Fatal(err)
				}
				s = rs.(ModelStore)
			} else {
				s = newLayout(t).(ModelStore)
			}
			var d Descriptor
			var err error
			peak, base := peakHeap(func() { d, err = s.PushModel(ctx, tt.path, meta) })
			if err != nil {
				t.Fatal(err)
			}
			if d.Size < size {
				t.Errorf("pushed %d bytes, want at least %d", d.Size, size)
			}
			t.Logf("peak heap in use %.1f MB (%.1f MB before)", float64(peak)/1e6, float64(base)/1e6)
			if peak > limit {
				t.Errorf("peak heap in use %.1f MB, want under %.0f MB", float64(peak)/1e6, limit/1e6)
			}
		})
	}
}

// BenchmarkPushModel pushes a 256 MiB model to a new in-process registry
// each time, so that every blob is uploaded.
func BenchmarkPushModel(b *testing.B) {
	const size = 256 << 20
	dir := filepath.Join(b.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "model.bin")
	if err := os.WriteFile(file, randomBytes(size, 5), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bb := range []struct{ name, path string }{{"file", file}, {"dir", dir}} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
				u, _ := url.Parse(srv.URL)
				s, err := OpenRemote(u.Host + "/ml")
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				b.StartTimer()
				_, err = s.(ModelStore).PushModel(ctx, bb.path, meta)
				b.StopTimer()
				srv.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
