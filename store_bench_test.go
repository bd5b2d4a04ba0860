package oauth2refresh_test

// Benchmarks of WithStore with the filestore.Store; the Redis and PostgreSQL stores have the same
// ones in their modules. Run:
//
//	go test -run '^$' -bench 'Store' -benchtime 2000x .
//	go -C store/redisstore test -run '^$' -bench . -benchtime 2000x .
//	go -C store/pgstore test -run '^$' -bench . -benchtime 2000x .

import (
	"testing"

	"github.com/tokenkit/oauth2refresh/store/filestore"
	"github.com/tokenkit/oauth2refresh/store/storetest"
)

// BenchmarkStoreHotPath: Token on a cached token, without a store and with a filestore.Store.
func BenchmarkStoreHotPath(b *testing.B) {
	b.Run("none", func(b *testing.B) { storetest.BenchHotPath(b, nil, "g") })
	b.Run("file", func(b *testing.B) {
		storetest.BenchHotPath(b, &filestore.Store{Dir: b.TempDir()}, "g")
	})
}

// BenchmarkStoreRefresh: one refresh (token endpoint in memory), without a store and through
// a filestore.Store (load, flock, write+fsync+rename, unlock).
func BenchmarkStoreRefresh(b *testing.B) {
	b.Run("none", func(b *testing.B) { storetest.BenchRefresh(b, nil, "g") })
	b.Run("file", func(b *testing.B) {
		storetest.BenchRefresh(b, &filestore.Store{Dir: b.TempDir()}, "g")
	})
}

// BenchmarkStorePickUp: a TokenSource picks up the token another one refreshed and saved in a
// filestore.Store (one file read).
func BenchmarkStorePickUp(b *testing.B) {
	storetest.BenchPickUp(b, &filestore.Store{Dir: b.TempDir()}, "g")
}

// BenchmarkStoreRefreshesPerLifetime: 4 TokenSources (as 4 processes) × 8 goroutines on one
// grant; token requests per access-token lifetime, each source on its own and through a
// filestore.Store.
func BenchmarkStoreRefreshesPerLifetime(b *testing.B) {
	b.Run("none", func(b *testing.B) { storetest.BenchRefreshesPerLifetime(b, nil, "g", 4, 8) })
	b.Run("file", func(b *testing.B) {
		storetest.BenchRefreshesPerLifetime(b, &filestore.Store{Dir: b.TempDir()}, "g", 4, 8)
	})
}
