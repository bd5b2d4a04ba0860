package pgstore_test

// Benchmarks against the PostgreSQL server of the tests (see testPool). Run:
//
//	go test -run '^$' -bench . -benchtime 2000x .

import (
	"testing"

	"github.com/tokenkit/oauth2refresh/store/storetest"
)

// BenchmarkHotPath: Token on a cached token held by a TokenSource that uses a PostgreSQL store.
func BenchmarkHotPath(b *testing.B) { storetest.BenchHotPath(b, testStore(b), "g") }

// BenchmarkRefresh: one refresh through PostgreSQL (SELECT, lease upsert, guarded UPDATE,
// release UPDATE), the token endpoint in memory.
func BenchmarkRefresh(b *testing.B) { storetest.BenchRefresh(b, testStore(b), "g") }

// BenchmarkPickUp: a TokenSource picks up the token another one refreshed (one SELECT).
func BenchmarkPickUp(b *testing.B) { storetest.BenchPickUp(b, testStore(b), "g") }

// BenchmarkRefreshesPerLifetime: 4 TokenSources (as 4 processes) × 8 goroutines on one grant
// through PostgreSQL: token requests per access-token lifetime.
func BenchmarkRefreshesPerLifetime(b *testing.B) {
	storetest.BenchRefreshesPerLifetime(b, testStore(b), "g", 4, 8)
}
