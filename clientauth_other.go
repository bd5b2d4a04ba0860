//go:build !unix

package oauth2refresh

// openNonblock is a flag of open(2) on unix alone (see clientauth_unix.go).
const openNonblock = 0
