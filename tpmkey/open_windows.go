//go:build windows

package tpmkey

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// SystemPath names the TPM that [OpenSystem] opens on Windows: TPM Base
// Services, which shares the TPM between processes.
const SystemPath = "TBS"

// OpenSystem opens the system's TPM: /dev/tpmrm0 on Linux, TPM Base
// Services (TBS) on Windows. Without one it returns an error matching
// [ErrNoTPM].
//
// The Windows path is built and vetted (GOOS=windows), not tested: the
// tests run against swtpm on Linux.
func OpenSystem() (*TPM, error) {
	conn, err := windowstpm.Open()
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("%w: TPM Base Services: %w", ErrNoTPM, err)
	}
	return newTPM(conn, SystemPath), nil
}
