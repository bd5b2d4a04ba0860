package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// A store keeps its tokens sealed: whoever reads the files (or the Redis values, or the
// PostgreSQL rows) sees no token, and whoever writes them cannot change one. Keys rotate by adding a new current key and keeping the old
// one for opening; a store read without the key that sealed its tokens says so.
func ExampleSeal() {
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	files := &filestore.Store{Dir: dir}

	// In production the keys come from a secret manager, 32 random bytes each.
	k2025, k2026 := make([]byte, 32), make([]byte, 32)
	rand.Read(k2025)
	rand.Read(k2026)
	sealer, err := store.NewSealer(map[string][]byte{"2025": k2025}, "2025")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	sealed := store.Seal(files, sealer)
	if err := oauth2refresh.SaveToken(ctx, sealed, "tenant-42", &oauth2.Token{RefreshToken: "rt-0"}); err != nil {
		panic(err)
	}
	raw, _ := files.Load(ctx, "tenant-42")
	fmt.Println("in the file:", strings.HasPrefix(raw.RefreshToken, "sealed.v1.2025."), strings.Contains(raw.RefreshToken, "rt-0"))

	// Rotation: the new key seals, the old one still opens what it sealed.
	rotated, err := store.NewSealer(map[string][]byte{"2025": k2025, "2026": k2026}, "2026")
	if err != nil {
		panic(err)
	}
	t, err := store.Seal(files, rotated).Load(ctx, "tenant-42")
	if err != nil {
		panic(err)
	}
	fmt.Println("opened:", t.RefreshToken)

	// Without the key that sealed it, the token is an error, not a missing grant.
	newOnly, err := store.NewSealer(map[string][]byte{"2026": k2026}, "2026")
	if err != nil {
		panic(err)
	}
	_, err = store.Seal(files, newOnly).Load(ctx, "tenant-42")
	fmt.Println(errors.Is(err, store.ErrUnknownSealKey))
	fmt.Println(err)

	// The token is sealed whole, its expiry and Extra members too: whoever can write the file
	// cannot change any of it. A member put beside the sealed value is refused.
	raw.Expiry = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := oauth2refresh.SaveToken(ctx, files, "tenant-42", raw); err != nil {
		panic(err)
	}
	_, err = sealed.Load(ctx, "tenant-42")
	var sealErr *store.SealError
	fmt.Println(errors.As(err, &sealErr))
	fmt.Println(err)
	// Output:
	// in the file: true false
	// opened: rt-0
	// true
	// oauth2refresh: stored token for key "tenant-42" cannot be opened (key id "2025"): sealed with a key id the sealer does not hold
	// true
	// oauth2refresh: stored token for key "tenant-42" cannot be opened (key id "2025"): clear members beside the sealed token
}
