//go:build !unix

package oauth2refresh

import (
	"errors"
	"os"
)

// tryLock fails: FileStore needs flock(2).
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locking is not supported on this system")
}
