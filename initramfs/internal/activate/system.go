package activate

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rules-dm/rules_dm/initramfs/internal/dm"
	"github.com/rules-dm/rules_dm/initramfs/internal/keyring"
)

// System returns the real kernel: ioctls on ctl, add_key(2), mknod(2),
// mount(2) and /bin/sh for DMTOOLS_MOUNT_CMD.
func System(ctl *dm.Control) *Kernel {
	return &Kernel{
		Mapper:      ctl,
		AddKey:      keyring.AddLogon,
		AddUserKey:  keyring.AddUser,
		KeyUnusable: keyring.Unavailable,
		UnlinkKey:   keyring.Unlink,
		MakeNode:    dm.MakeNode,
		RemoveNode:  dm.RemoveNode,
		ReadAll:     readAll,
		Mount:       sysMount,
		RunMountCmd: runShell,
	}
}

// BlockDevNum returns "major:minor" of a block device path.
func BlockDevNum(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", path)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}

// CheckBlockDevs fails unless DATA_DEV (and META_DEV) are block devices.
func CheckBlockDevs(c *Config) error {
	for _, d := range []struct{ name, path string }{{"DATA_DEV", c.DataDev}, {"META_DEV", c.MetaDev}} {
		if d.path == "" {
			continue
		}
		if _, err := BlockDevNum(d.path); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

// mountFlags maps the generic options to mount(2) flags; the rest is the
// filesystem's data string.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC, "sync": unix.MS_SYNCHRONOUS, "dirsync": unix.MS_DIRSYNC,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME, "lazytime": unix.MS_LAZYTIME, "silent": unix.MS_SILENT,
	"rw": 0, "defaults": 0, "suid": 0, "dev": 0, "exec": 0, "async": 0, "atime": 0,
}

// SplitMountOpts splits "ro,errors=panic" into flags and data.
func SplitMountOpts(opts string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			flags |= f
			if o == "rw" {
				flags &^= unix.MS_RDONLY
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

func sysMount(dev string, c *Config) error {
	if err := os.MkdirAll(c.NewRoot, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", c.NewRoot, err)
	}
	flags, data := SplitMountOpts(c.MountOpt)
	types := []string{c.FSType}
	if c.FSType == "" {
		types = blockFilesystems()
	}
	var err error
	for _, t := range types {
		if err = unix.Mount(dev, c.NewRoot, t, flags, data); err == nil {
			return nil
		}
	}
	return fmt.Errorf("mount of %s on %s failed: %w", dev, c.NewRoot, err)
}

// blockFilesystems lists the filesystems of /proc/filesystems that need a
// device (what busybox mount tries without -t).
func blockFilesystems() []string {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return []string{"ext4"}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "nodev") {
			continue
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// readAll reads a device to its end (1 MiB at a time): every block of a
// verity or integrity device is then checked once.
func readAll(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// runShell runs DMTOOLS_MOUNT_CMD. When it fails, whatever it mounted on
// newroot is unmounted (best effort) so that the cleanup can remove the
// mappings, as apply_manifest.sh does.
func runShell(cmd, newroot string, env []string) error {
	if err := os.MkdirAll(newroot, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", newroot, err)
	}
	x := exec.Command("/bin/sh", "-c", cmd)
	x.Env = append(ChildEnv(os.Environ()), env...) // no key variables
	x.Stdin, x.Stdout, x.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := x.Run()
	if err != nil {
		_ = unix.Unmount(newroot, 0)
	}
	return err
}

// FailHooks are the fail actions' system calls (replaced in tests).
type FailHooks struct {
	Sync   func()
	Sysrq  func() error // write 'c' to /proc/sysrq-trigger
	Reboot func() error
	Shell  func() error // exec /bin/sh; returns only on failure
	Exit   func(code int)
	Sleep  func(time.Duration)
}

// SystemFailHooks are the real ones.
func SystemFailHooks() FailHooks {
	return FailHooks{
		Sync: unix.Sync,
		Sysrq: func() error {
			_ = os.WriteFile("/proc/sys/kernel/sysrq", []byte("1"), 0)
			return os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
		},
		Reboot: func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART) },
		Shell: func() error {
			return unix.Exec("/bin/sh", []string{"sh"}, ChildEnv(os.Environ()))
		},
		Exit:  os.Exit,
		Sleep: time.Sleep,
	}
}

// Fail takes the fail action: panic (sync, then crash the kernel through
// sysrq; when that does not happen, as without /proc, a forced reboot),
// reboot (sync, restart), shell (exec /bin/sh on the console, without the
// key variables) or exit (code). When an action cannot be taken it says so
// and exits with code. It does not return (unless h.Exit does, in tests).
func Fail(action string, code int, h FailHooks, log func(string)) {
	switch action {
	case FailPanic:
		log("fail action panic: sync, then sysrq crash")
		h.Sync()
		if err := h.Sysrq(); err != nil {
			log(fmt.Sprintf("fail action panic: /proc/sysrq-trigger: %v", err))
		} else {
			h.Sleep(5 * time.Second) // the crash is synchronous; do not race it
		}
		// Still here: as apply_manifest.sh, fall back to a forced reboot
		// rather than going on.
		log("panic failed (is /proc mounted?); trying reboot -f")
		if err := h.Reboot(); err != nil {
			log(fmt.Sprintf("fail action panic: reboot: %v", err))
		} else {
			h.Sleep(5 * time.Second)
		}
	case FailReboot:
		log("fail action reboot: sync, then restart")
		h.Sync()
		if err := h.Reboot(); err != nil {
			log(fmt.Sprintf("fail action reboot: %v", err))
		} else {
			h.Sleep(5 * time.Second)
		}
	case FailShell:
		log("fail action shell: exec /bin/sh")
		if err := h.Shell(); err != nil {
			log(fmt.Sprintf("fail action shell: %v", err))
		}
	}
	h.Exit(code)
}
