package tpmkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultTimeout bounds one TPM command when [TPM.Timeout] is zero: the wait
// for the TPM (behind other goroutines of this process, or another process
// holding a simulator's socket) and the command itself.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds a TPM response; TPM 2.0 responses fit in 4096 bytes
// (TPM 2.0 Part 2, MAX_RESPONSE_SIZE of the PC Client profile).
const maxResponse = 4096

// headerSize is the size of a TPM command or response header: tag (2),
// size (4), command or response code (4) (TPM 2.0 Part 1 §18).
const headerSize = 10

// TPM is a connection to a TPM 2.0, opened by [Open], [OpenSystem] or [New].
// It is safe for concurrent use: commands run one at a time, as a TPM runs
// them, and each waits at most Timeout for its turn and its answer.
type TPM struct {
	// Timeout bounds each command, its wait for the TPM included. If zero,
	// DefaultTimeout. Set it before first use.
	Timeout time.Duration

	conn transport.TPMCloser
	desc string        // what was opened, for errors
	turn chan struct{} // a one-slot semaphore: holding it is running a command
	// closeOnce makes Close idempotent.
	closeOnce sync.Once
	closeErr  error
}

// Open opens the TPM at path: a character device such as /dev/tpmrm0 (the
// Linux kernel's resource manager), or the Unix socket of a TPM simulator
// speaking raw TPM 2.0 commands, such as swtpm started with
// "--server type=unixio,path=PATH". A path that does not exist or cannot be
// opened is an error matching [ErrNoTPM].
func Open(path string) (*TPM, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, noTPM(path, err)
	}
	switch {
	case fi.Mode()&fs.ModeSocket != 0:
		return newTPM(&socketConn{path: path}, path), nil
	case fi.Mode()&fs.ModeDevice != 0:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, noTPM(path, err)
		}
		return newTPM(&streamConn{rwc: f}, path), nil
	}
	return nil, fmt.Errorf("%w: %s is neither a device nor a socket (%s)", ErrNoTPM, path, fi.Mode())
}

// New returns a TPM that sends commands over rwc, one command and one
// response at a time, and closes it on Close. If rwc has a SetDeadline
// method (a net.Conn, a pollable *os.File), each command gets a deadline.
func New(rwc io.ReadWriteCloser) *TPM {
	return newTPM(&streamConn{rwc: rwc}, fmt.Sprintf("%T", rwc))
}

func newTPM(conn transport.TPMCloser, desc string) *TPM {
	return &TPM{conn: conn, desc: desc, turn: make(chan struct{}, 1)}
}

func noTPM(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: no permission to open %s (on Linux, join the group that owns it, usually tss): %w", ErrNoTPM, path, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrNoTPM, path, err)
}

// Close closes the connection. Keys loaded through it become unusable; on
// /dev/tpmrm0 the kernel flushes them. Close them first to free their TPM
// slots elsewhere.
func (t *TPM) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.conn.Close() })
	return t.closeErr
}

func (t *TPM) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultTimeout
}

// Send runs one raw TPM command. It implements go-tpm's transport.TPM, so
// that tpm2 commands can be executed on t; the lock is held for this one
// command only.
func (t *TPM) Send(cmd []byte) ([]byte, error) {
	timeout := t.timeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t.turn <- struct{}{}:
	case <-timer.C:
		return nil, fmt.Errorf("%w: %s: waited %v for the TPM's other commands", ErrBusy, t.desc, timeout)
	}
	defer func() { <-t.turn }()
	deadline := time.Now().Add(timeout)
	var rsp []byte
	var err error
	if d, ok := t.conn.(deadliner); ok {
		rsp, err = d.sendBy(cmd, deadline)
	} else {
		rsp, err = t.conn.Send(cmd) // e.g. Windows TBS: bounded by the OS
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("%w: %s: no answer within %v: %w", ErrBusy, t.desc, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tpmkey: %s: %w", t.desc, err)
	}
	return rsp, nil
}

var _ transport.TPMCloser = (*TPM)(nil)

// deadliner is a connection that bounds each command by a deadline.
type deadliner interface {
	sendBy(cmd []byte, deadline time.Time) ([]byte, error)
}

// streamConn sends commands over one long-lived stream: a device file or
// a caller's io.ReadWriteCloser. It is used under TPM.turn only.
type streamConn struct {
	rwc    io.ReadWriteCloser
	broken error // the I/O error after which responses may be out of step
}

func (c *streamConn) Send(cmd []byte) ([]byte, error) { return c.sendBy(cmd, time.Time{}) }

func (c *streamConn) sendBy(cmd []byte, deadline time.Time) ([]byte, error) {
	if c.broken != nil {
		return nil, fmt.Errorf("connection unusable since an earlier failure (reopen the TPM): %w", c.broken)
	}
	if d, ok := c.rwc.(interface{ SetDeadline(time.Time) error }); ok && !deadline.IsZero() {
		// A device that cannot poll says os.ErrNoDeadline; the kernel's TPM
		// driver then bounds the command by the TPM's own timeouts.
		_ = d.SetDeadline(deadline)
	}
	_, err := c.rwc.Write(cmd)
	var rsp []byte
	if err == nil {
		rsp, err = readResponse(c.rwc)
	}
	if err != nil {
		// A late response would be read as the next command's.
		c.broken = err
		return nil, err
	}
	return rsp, nil
}

func (c *streamConn) Close() error { return c.rwc.Close() }

// socketConn connects to a simulator's Unix socket for each command, as
// swtpm expects of its clients: one connection is served at a time, so
// holding one open would lock other processes out.
type socketConn struct {
	path string
}

func (c *socketConn) Send(cmd []byte) ([]byte, error) {
	return c.sendBy(cmd, time.Now().Add(DefaultTimeout))
}

func (c *socketConn) sendBy(cmd []byte, deadline time.Time) ([]byte, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("unix", c.path)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := conn.Write(cmd); err != nil {
		return nil, err
	}
	return readResponse(conn)
}

func (c *socketConn) Close() error { return nil }

// readResponse reads one TPM response: its header, then as many bytes as
// the header's size says, at most maxResponse in all.
func readResponse(r io.Reader) ([]byte, error) {
	buf := make([]byte, maxResponse)
	// A device file returns the whole response to one read; a stream may
	// split it. Read the header first, then the rest.
	n, err := io.ReadAtLeast(r, buf, headerSize)
	if err != nil {
		return nil, fmt.Errorf("reading the TPM's response: %w", err)
	}
	size := int(binary.BigEndian.Uint32(buf[2:6]))
	if size < headerSize || size > maxResponse {
		return nil, fmt.Errorf("TPM response claims %d bytes, want %d to %d", size, headerSize, maxResponse)
	}
	if n < size {
		if _, err := io.ReadFull(r, buf[n:size]); err != nil {
			return nil, fmt.Errorf("reading the TPM's response: %w", err)
		}
	} else if n > size {
		return nil, fmt.Errorf("TPM response is %d bytes, its header says %d", n, size)
	}
	return buf[:size], nil
}

// retryable lists the TPM warnings that mean "try again later" (TPM 2.0
// Part 2 §6.6.3): a TPM without a resource manager in front of it (a
// simulator, /dev/tpm0) may have its few object slots taken by another
// process's short-lived objects.
var retryable = []error{tpm2.TPMRCObjectMemory, tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting, tpm2.TPMRCNVRate}

// execute runs a sequence of tpm2 commands on t, retrying the whole of it on
// a retryable warning after a growing, jittered pause, within t's timeout;
// then it fails with ErrBusy. The sequence must release what it loaded
// when it fails, so that processes short of object slots do not wait on
// each other forever.
func execute[R any](t *TPM, run func() (R, error)) (R, error) {
	deadline := time.Now().Add(t.timeout())
	pause := 5 * time.Millisecond
	for {
		rsp, err := run()
		if err == nil || !isRetryable(err) {
			return rsp, err
		}
		if time.Now().Add(pause).After(deadline) {
			return rsp, fmt.Errorf("%w: %s kept answering %w for %v", ErrBusy, t.desc, err, t.timeout())
		}
		time.Sleep(pause/2 + rand.N(pause/2+1))
		pause = min(2*pause, 200*time.Millisecond)
	}
}

func isRetryable(err error) bool {
	for _, w := range retryable {
		if errors.Is(err, w) {
			return true
		}
	}
	return false
}
