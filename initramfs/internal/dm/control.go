package dm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control node.
const ControlPath = "/dev/mapper/control"

// MapperDir holds the /dev/mapper/<name> block nodes.
const MapperDir = "/dev/mapper"

// Control is an open /dev/mapper/control.
type Control struct {
	fd int
	// do issues one ioctl on buf (replaced in tests).
	do func(req uintptr, buf []byte) error
}

// Open opens the control node, creating it from /sys/class/misc/device-mapper
// when it is missing (an initramfs without devtmpfs or udev), and checks that
// the kernel speaks interface version 4.
func Open() (*Control, error) {
	fd, err := unix.Open(ControlPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		if mkerr := makeControlNode(); mkerr != nil {
			return nil, fmt.Errorf("open %s: %w (%v)", ControlPath, err, mkerr)
		}
		fd, err = unix.Open(ControlPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (is dm-mod loaded?)", ControlPath, err)
	}
	c := &Control{fd: fd}
	c.do = c.sysIoctl
	v, err := c.Version()
	if err != nil {
		c.Close()
		return nil, err
	}
	if v[0] != ioctlVersion[0] {
		c.Close()
		return nil, fmt.Errorf("device-mapper ioctl interface %d.%d.%d is not version %d", v[0], v[1], v[2], ioctlVersion[0])
	}
	return c, nil
}

// makeControlNode creates /dev/mapper/control from the misc device number.
func makeControlNode() error {
	b, err := os.ReadFile("/sys/class/misc/device-mapper/dev")
	if err != nil {
		return fmt.Errorf("device-mapper not in the kernel: %w", err)
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("bad device number %q for device-mapper", strings.TrimSpace(string(b)))
	}
	if err := os.MkdirAll(MapperDir, 0o755); err != nil {
		return err
	}
	return unix.Mknod(ControlPath, unix.S_IFCHR|0o600, int(unix.Mkdev(uint32(ma), uint32(mi))))
}

// Close closes the control node.
func (c *Control) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

func (c *Control) sysIoctl(req uintptr, buf []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(c.fd), req, uintptr(unsafe.Pointer(&buf[0])))
	if e != 0 {
		return e
	}
	return nil
}

// call marshals and issues one ioctl, returning the answer buffer.
func (c *Control) call(op string, req uintptr, name string, flags uint32, targets []Target, extra int) ([]byte, Info, error) {
	buf, err := marshal(name, flags, targets, extra)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s %s: %w", op, name, err)
	}
	if err := c.do(req, buf); err != nil {
		wipe(buf)
		if name == "" {
			return nil, Info{}, fmt.Errorf("%s: %w", op, err)
		}
		return nil, Info{}, fmt.Errorf("%s %s: %w", op, name, err)
	}
	in, err := parseInfo(buf)
	return buf, in, err
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// Version returns the kernel's ioctl interface version (DM_VERSION).
func (c *Control) Version() ([3]uint32, error) {
	_, in, err := c.call("DM_VERSION", unix.DM_VERSION, "", 0, nil, 0)
	return in.Version, err
}

// Create creates an empty, suspended mapped device (DM_DEV_CREATE).
func (c *Control) Create(name, uuid string) (Info, error) {
	if len(uuid) >= uuidLen {
		return Info{}, fmt.Errorf("uuid %q too long", uuid)
	}
	buf, err := marshal(name, 0, nil, 0)
	if err != nil {
		return Info{}, fmt.Errorf("DM_DEV_CREATE %s: %w", name, err)
	}
	copy(buf[offUUID:offUUID+uuidLen-1], uuid)
	if err := c.do(unix.DM_DEV_CREATE, buf); err != nil {
		return Info{}, fmt.Errorf("DM_DEV_CREATE %s: %w", name, err)
	}
	return parseInfo(buf)
}

// Load loads targets into the inactive table slot (DM_TABLE_LOAD). The
// request carries DM_SECURE_DATA_FLAG (the kernel wipes its copy) and the
// request buffer is wiped here: parameters may hold key material.
func (c *Control) Load(name string, targets []Target, readOnly bool) error {
	flags := uint32(FlagSecureData)
	if readOnly {
		flags |= FlagReadOnly
	}
	buf, _, err := c.call("DM_TABLE_LOAD", unix.DM_TABLE_LOAD, name, flags, targets, 0)
	wipe(buf)
	return err
}

// Resume makes the inactive table live and resumes I/O (DM_DEV_SUSPEND
// without DM_SUSPEND_FLAG).
func (c *Control) Resume(name string) (Info, error) {
	_, in, err := c.call("DM_DEV_SUSPEND(resume)", unix.DM_DEV_SUSPEND, name, 0, nil, 0)
	return in, err
}

// Remove removes a mapped device and its tables (DM_DEV_REMOVE), retrying a
// few times while it is busy.
func (c *Control) Remove(name string) error {
	var err error
	for i := 0; i < 10; i++ {
		_, _, err = c.call("DM_DEV_REMOVE", unix.DM_DEV_REMOVE, name, 0, nil, 0)
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Status returns the device's information (DM_DEV_STATUS). A missing device
// gives an error for which IsNotExist is true.
func (c *Control) Status(name string) (Info, error) {
	_, in, err := c.call("DM_DEV_STATUS", unix.DM_DEV_STATUS, name, 0, nil, 0)
	return in, err
}

// IsNotExist reports whether err says the mapped device does not exist.
func IsNotExist(err error) bool { return errors.Is(err, unix.ENXIO) }

// Table returns the active table (DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG),
// as the kernel prints it (devices as major:minor). The answer may hold key
// material: callers should wipe the returned Params after use.
func (c *Control) Table(name string) (Info, []Target, error) {
	return c.tableStatus(name, FlagStatusTable|FlagSecureData)
}

// InactiveTable returns the table loaded in the inactive slot (by Load,
// before Resume), as Table does for the active one.
func (c *Control) InactiveTable(name string) (Info, []Target, error) {
	return c.tableStatus(name, FlagStatusTable|FlagSecureData|FlagQueryInactive)
}

// Clear drops the inactive table (DM_TABLE_CLEAR).
func (c *Control) Clear(name string) error {
	_, _, err := c.call("DM_TABLE_CLEAR", unix.DM_TABLE_CLEAR, name, 0, nil, 0)
	return err
}

// TargetStatus returns the targets' status lines (DM_TABLE_STATUS), e.g.
// "V" or "C" for verity.
func (c *Control) TargetStatus(name string) (Info, []Target, error) {
	return c.tableStatus(name, 0)
}

func (c *Control) tableStatus(name string, flags uint32) (Info, []Target, error) {
	extra := 16 << 10
	for {
		buf, in, err := c.call("DM_TABLE_STATUS", unix.DM_TABLE_STATUS, name, flags, nil, extra)
		if err != nil {
			return in, nil, err
		}
		if in.Flags&FlagBufferFull != 0 {
			wipe(buf)
			if extra >= 16<<20 {
				return in, nil, fmt.Errorf("DM_TABLE_STATUS %s: answer larger than %d bytes", name, extra)
			}
			extra *= 4
			continue
		}
		t, err := parseTargets(buf, in)
		wipe(buf)
		if err != nil {
			return in, nil, fmt.Errorf("DM_TABLE_STATUS %s: %w", name, err)
		}
		return in, t, nil
	}
}

// NodePath is /dev/mapper/<name>.
func NodePath(name string) string { return filepath.Join(MapperDir, name) }

// MakeNode makes /dev/mapper/<name> a block node for dev (there is no udev in
// an initramfs). An existing node with the right number is kept; anything
// else at that path is replaced.
func MakeNode(name string, dev uint64) (string, error) {
	p := NodePath(name)
	if err := ValidName(name); err != nil {
		return p, err
	}
	var st unix.Stat_t
	// A node (or a udev symlink to one) for this device is kept.
	if err := unix.Stat(p, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == dev {
		return p, nil
	}
	if err := unix.Lstat(p, &st); err == nil {
		if err := os.Remove(p); err != nil {
			return p, fmt.Errorf("replace %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(MapperDir, 0o755); err != nil {
		return p, fmt.Errorf("mkdir %s: %w", MapperDir, err)
	}
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(dev)); err != nil {
		return p, fmt.Errorf("mknod %s (%d:%d): %w", p, unix.Major(dev), unix.Minor(dev), err)
	}
	return p, nil
}

// RemoveNode removes /dev/mapper/<name> if it is a block node.
func RemoveNode(name string) error {
	p := NodePath(name)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil
	}
	return os.Remove(p)
}
