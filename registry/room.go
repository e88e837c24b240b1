package registry

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// maxReserve is the most free space a pull keeps on the destination's
// disk: an unpack that would leave less is refused before it writes. On a
// small disk, a twentieth of its size is kept instead.
const maxReserve = 1 << 30

// diskSpace returns the bytes an unprivileged process may still write on
// the filesystem holding dir, and that filesystem's size. Tests replace it
// to stand for a full disk.
var diskSpace = func(dir string) (free, size int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

// checkRoom fails unless n more bytes fit on the disk holding dir and
// still leave its reserve free. A pull checks every file it unpacks, by
// the size its tar header or descriptor declares, before writing it: an
// archive that unpacks to far more than it weighs (a tar bomb) is refused
// at that file rather than left to fill the disk.
func checkRoom(dir string, n int64) error {
	if n < 0 {
		return fmt.Errorf("negative size %d", n)
	}
	free, size, err := diskSpace(dir)
	if err != nil {
		return err
	}
	reserve := min(int64(maxReserve), size/20)
	if n > free-reserve {
		return fmt.Errorf("%s would not fit: the destination's disk has %s free, and a pull leaves %s of it free", byteSize(n), byteSize(free), byteSize(reserve))
	}
	return nil
}

// byteSize renders n bytes for people: "512 B", "1.5 MiB", "1.0 PiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
