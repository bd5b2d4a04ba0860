//go:build !unix

package filestore

import (
	"errors"
	"io/fs"
	"os"
)

// dirOwner does not know owners on this system.
func dirOwner(fs.FileInfo) (owner, user int, known bool) { return -1, -1, false }

// tryLock fails: Store needs flock(2).
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locking is not supported on this system")
}
