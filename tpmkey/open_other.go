//go:build !windows

package tpmkey

// SystemPath is the TPM that [OpenSystem] opens on Unix: the Linux kernel's
// resource manager, which lets several processes share the TPM and flushes
// a process's keys from it when the process closes it or exits.
const SystemPath = "/dev/tpmrm0"

// OpenSystem opens the system's TPM: [SystemPath] on Linux, TPM Base
// Services (TBS) on Windows. Without one it returns an error matching
// [ErrNoTPM].
func OpenSystem() (*TPM, error) { return Open(SystemPath) }
