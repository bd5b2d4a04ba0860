//go:build unix

package oauth2refresh

import "syscall"

// openNonblock opens an AssertionFile without waiting for a FIFO's writer; a regular file
// reads as it would without it.
const openNonblock = syscall.O_NONBLOCK
