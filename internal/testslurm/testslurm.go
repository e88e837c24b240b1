// Package testslurm starts a real two-node Slurm cluster on this machine
// for tests: munged, slurmctld and two slurmd processes (nodes n1 and n2)
// from Debian's slurm-wlm, with a configuration in a temporary folder and
// no systemd. It needs root, as slurmd does.
package testslurm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Available reports whether the Slurm daemons are installed.
func Available() bool {
	for _, bin := range []string{"slurmctld", "slurmd", "munged", "sbatch", "squeue"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", bin)); err != nil {
				return false
			}
		}
	}
	return true
}

// Cluster is a running test cluster.
type Cluster struct {
	// Conf is the slurm.conf path: clients find the cluster through
	// SLURM_CONF=Conf.
	Conf string
	// Nodes are the node names, "n1" and "n2"; Partition is their
	// partition.
	Nodes     []string
	Partition string
	dir       string
}

// Env is what a client process needs in its environment.
func (c *Cluster) Env() []string { return []string{"SLURM_CONF=" + c.Conf} }

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// Start starts a cluster whose files live in dir, and waits until both
// nodes are idle. Stop it with Stop.
//
// The daemons' ports are picked free, then bound by the daemons: another
// process may take one in between (tests start registries and clusters
// side by side), and a daemon then cannot listen. Start tries again on
// fresh ports, up to three times.
func Start(dir string) (*Cluster, error) {
	var err error
	for attempt := range 3 {
		d := dir
		if attempt > 0 {
			d = filepath.Join(dir, fmt.Sprintf("retry-%d", attempt))
		}
		var c *Cluster
		if c, err = start(d); err == nil || !strings.Contains(err.Error(), "Address already in use") {
			return c, err
		}
	}
	return nil, err
}

func start(dir string) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a Slurm test cluster needs root (slurmd runs jobs as their users)")
	}
	if err := startMunge(); err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	host, _, _ = strings.Cut(host, ".")
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"state", "spool"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "slurm.conf")
	text := strings.NewReplacer("{TMP}", dir, "{HOST}", host, "{CTLPORT}", strconv.Itoa(ports[0]), "{PORT1}", strconv.Itoa(ports[1]), "{PORT2}", strconv.Itoa(ports[2])).Replace(confTemplate)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	c := &Cluster{Conf: conf, Nodes: []string{"n1", "n2"}, Partition: "debug", dir: dir}
	env := append(os.Environ(), c.Env()...)
	for _, args := range [][]string{{sbin("slurmctld"), "-i"}, {sbin("slurmd"), "-N", "n1"}, {sbin("slurmd"), "-N", "n2"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			c.Stop()
			return nil, fmt.Errorf("%s: %v: %s%s", strings.Join(args, " "), err, out, c.logs())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command("sinfo", "-h", "-o", "%T")
		cmd.Env = env
		out, err := cmd.Output()
		if err == nil && strings.TrimSpace(string(out)) == "idle" {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("the Slurm test cluster did not become idle in 30 s (sinfo: %q, %v)%s", out, err, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs returns the daemons' logs, for a failure message.
func (c *Cluster) logs() string {
	var b bytes.Buffer
	for _, f := range []string{"slurmctld.log", "slurmd.n1.log", "slurmd.n2.log"} {
		if data, err := os.ReadFile(filepath.Join(c.dir, f)); err == nil {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			fmt.Fprintf(&b, "\n--- %s (last lines)\n%s", f, strings.Join(lines[max(0, len(lines)-10):], "\n"))
		}
	}
	return b.String()
}

// Stop stops the daemons and waits for them to exit.
func (c *Cluster) Stop() {
	var pids []int
	for _, f := range []string{"slurmctld.pid", "slurmd.n1.pid", "slurmd.n2.pid"} {
		data, err := os.ReadFile(filepath.Join(c.dir, f))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// startMunge starts munged unless it answers already.
func startMunge() error {
	if exec.Command("sh", "-c", "munge -n | unmunge").Run() == nil {
		return nil
	}
	for _, d := range []string{"/run/munge", "/var/log/munge", "/var/lib/munge"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if out, err := exec.Command("chown", "munge:munge", d).CombinedOutput(); err != nil {
			return fmt.Errorf("chown %s: %v: %s", d, err, out)
		}
	}
	if out, err := exec.Command("runuser", "-u", "munge", "--", sbin("munged")).CombinedOutput(); err != nil {
		return fmt.Errorf("munged: %v: %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("sh", "-c", "munge -n | unmunge").Run() != nil {
		if time.Now().After(deadline) {
			return errors.New("munged did not answer in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// confTemplate is the configuration of RECIPES.md: {HOST} is the short
// host name, {TMP} the cluster's folder, the ports free ones.
const confTemplate = `ClusterName=zen
SlurmctldHost={HOST}(127.0.0.1)
SlurmctldPort={CTLPORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=450
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation={TMP}/state
SlurmdSpoolDir={TMP}/spool/%n
SlurmctldPidFile={TMP}/slurmctld.pid
SlurmdPidFile={TMP}/slurmd.%n.pid
SlurmctldLogFile={TMP}/slurmctld.log
SlurmdLogFile={TMP}/slurmd.%n.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
NodeName=n1 NodeHostname={HOST} NodeAddr=127.0.0.1 Port={PORT1} CPUs=1 RealMemory=500
NodeName=n2 NodeHostname={HOST} NodeAddr=127.0.0.1 Port={PORT2} CPUs=1 RealMemory=500
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`
