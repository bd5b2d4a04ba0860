package oauth2refresh_test

// Benchmarks of the Manager, side by side with the hand-written version it replaces: a
// sync.Mutex-guarded map[string]*TokenSource. Run:
//
//	go test -run '^$' -bench Manager -benchmem -count=1 .

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/store/filestore"
	"golang.org/x/oauth2"
)

// benchGrantCounts are the numbers of grants the Manager's benchmarks hold.
var benchGrantCounts = []int{1, 1000, 100000}

// seededStore returns a memStore holding a token valid for an hour under each of keys.
func seededStore(keys []string) *memStore {
	ms := newMemStore()
	exp := time.Now().Add(time.Hour)
	for _, k := range keys {
		ms.grants[k] = &memGrant{tok: &oauth2.Token{AccessToken: "at-" + k, TokenType: "Bearer", RefreshToken: "rt-" + k,
			Expiry: exp}, sem: make(chan struct{}, 1)}
	}
	return ms
}

// mutexMap is the hand-written version of the Manager: a TokenSource per key in a map, behind
// one mutex, made from the Store on first use and never dropped.
type mutexMap struct {
	e *oauth2refresh.Endpoint
	s oauth2refresh.Store

	mu      sync.Mutex // guards sources
	sources map[string]*oauth2refresh.TokenSource
}

func (mm *mutexMap) source(key string) *oauth2refresh.TokenSource {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	ts := mm.sources[key]
	if ts == nil {
		ts = mm.e.TokenSource(context.Background(), nil, oauth2refresh.WithStore(mm.s, key))
		mm.sources[key] = ts
	}
	return ts
}

// holdAll makes m and mm hold a TokenSource with a valid token for each of keys.
func holdAll(b *testing.B, keys []string, token func(key string) (*oauth2.Token, error)) {
	b.Helper()
	for _, k := range keys {
		if _, err := token(k); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCached runs get on keys, serially and from parallel goroutines that each start at
// another key and go round.
func benchCached(b *testing.B, keys []string, get func(ctx context.Context, key string) (*oauth2.Token, error)) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := get(ctx, keys[i]); err != nil {
				b.Fatal(err)
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var start atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(start.Add(7919)) % len(keys)
			for pb.Next() {
				if _, err := get(ctx, keys[i]); err != nil {
					b.Error(err)
					return
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	})
}

// BenchmarkManagerCachedToken: Grant(key).TokenContext on held grants with valid tokens, for
// 1, 1,000 and 100,000 grants.
func BenchmarkManagerCachedToken(b *testing.B) {
	for _, n := range benchGrantCounts {
		keys := grantKeys(n)
		m := oauth2refresh.NewManager(benchEndpoint(&memTransport{}), seededStore(keys), &oauth2refresh.ManagerOptions{MaxGrants: n})
		holdAll(b, keys, func(k string) (*oauth2.Token, error) { return m.Grant(k).Token() })
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			benchCached(b, keys, func(ctx context.Context, k string) (*oauth2.Token, error) {
				return m.Grant(k).TokenContext(ctx)
			})
		})
	}
}

// BenchmarkMutexMapCachedToken: the same through a sync.Mutex-guarded
// map[string]*TokenSource.
func BenchmarkMutexMapCachedToken(b *testing.B) {
	for _, n := range benchGrantCounts {
		keys := grantKeys(n)
		mm := &mutexMap{e: benchEndpoint(&memTransport{}), s: seededStore(keys), sources: map[string]*oauth2refresh.TokenSource{}}
		holdAll(b, keys, func(k string) (*oauth2.Token, error) { return mm.source(k).Token() })
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			benchCached(b, keys, func(ctx context.Context, k string) (*oauth2.Token, error) {
				return mm.source(k).TokenContext(ctx)
			})
		})
	}
}

// heapAlloc returns the bytes of live heap objects after a garbage collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkManagerMemoryPerGrant: the heap held per grant (TokenSource with its valid token,
// and the Manager's entry, or the map's) with 100,000 grants held, by the Manager and by the
// mutex-guarded map; the stored tokens themselves, made before, are not counted.
func BenchmarkManagerMemoryPerGrant(b *testing.B) {
	const n = 100000
	keys := grantKeys(n)
	ms := seededStore(keys)
	e := benchEndpoint(&memTransport{})
	b.Run("manager", func(b *testing.B) {
		var per float64
		for b.Loop() {
			before := heapAlloc()
			m := oauth2refresh.NewManager(e, ms, &oauth2refresh.ManagerOptions{MaxGrants: n})
			holdAll(b, keys, func(k string) (*oauth2.Token, error) { return m.Grant(k).Token() })
			per = float64(heapAlloc()-before) / n
			runtime.KeepAlive(m)
		}
		b.ReportMetric(per, "B/grant")
	})
	b.Run("mutex-map", func(b *testing.B) {
		var per float64
		for b.Loop() {
			before := heapAlloc()
			mm := &mutexMap{e: e, s: ms, sources: map[string]*oauth2refresh.TokenSource{}}
			holdAll(b, keys, func(k string) (*oauth2.Token, error) { return mm.source(k).Token() })
			per = float64(heapAlloc()-before) / n
			runtime.KeepAlive(mm)
		}
		b.ReportMetric(per, "B/grant")
	})
}

// countingStore counts the calls made to the Store it wraps, and to its leases.
type countingStore struct {
	oauth2refresh.Store
	loads, locks, saves, releases atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	s.loads.Add(1)
	return s.Store.Load(ctx, key)
}

func (s *countingStore) Lock(ctx context.Context, key string, ttl time.Duration) (oauth2refresh.Lease, error) {
	s.locks.Add(1)
	l, err := s.Store.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return &countingLease{l, s}, nil
}

func (s *countingStore) total() int64 {
	return s.loads.Load() + s.locks.Load() + s.saves.Load() + s.releases.Load()
}

type countingLease struct {
	oauth2refresh.Lease
	s *countingStore
}

func (l *countingLease) Save(ctx context.Context, t *oauth2.Token) error {
	l.s.saves.Add(1)
	return l.Lease.Save(ctx, t)
}

func (l *countingLease) Release(ctx context.Context) error {
	l.s.releases.Add(1)
	return l.Lease.Release(ctx)
}

// BenchmarkManagerStoreRoundTrips: the filestore.Store calls of one refresh of a managed grant
// (token endpoint in memory), and of the first use of a grant the Manager does not hold.
func BenchmarkManagerStoreRoundTrips(b *testing.B) {
	ctx := context.Background()
	b.Run("refresh", func(b *testing.B) {
		cs := &countingStore{Store: &filestore.Store{Dir: b.TempDir()}}
		clk := newFakeClock()
		m := oauth2refresh.NewManager(benchEndpoint(&memTransport{status: 200, body: tokenBody}), cs,
			&oauth2refresh.ManagerOptions{SourceOptions: []oauth2refresh.Option{oauth2refresh.WithClock(clk.now)}})
		if err := m.Grant("g").SaveToken(ctx, &oauth2.Token{RefreshToken: "refresh-token-1"}); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Grant("g").Token(); err != nil {
			b.Fatal(err)
		}
		base, loads, locks, saves := cs.total(), cs.loads.Load(), cs.locks.Load(), cs.saves.Load()
		for b.Loop() {
			clk.advance(2 * time.Hour)
			if _, err := m.Grant("g").Token(); err != nil {
				b.Fatal(err)
			}
		}
		n := float64(b.N)
		b.ReportMetric(float64(cs.total()-base)/n, "calls/refresh")
		b.ReportMetric(float64(cs.loads.Load()-loads)/n, "loads/refresh")
		b.ReportMetric(float64(cs.locks.Load()-locks)/n, "locks/refresh")
		b.ReportMetric(float64(cs.saves.Load()-saves)/n, "saves/refresh")
	})
	b.Run("first-use", func(b *testing.B) {
		cs := &countingStore{Store: &filestore.Store{Dir: b.TempDir()}}
		m := oauth2refresh.NewManager(benchEndpoint(&memTransport{status: 200, body: tokenBody}), cs,
			&oauth2refresh.ManagerOptions{MaxGrants: 1})
		for _, k := range []string{"g", "h"} {
			if err := m.Grant(k).SaveToken(ctx, &oauth2.Token{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
		base := cs.total()
		keys := []string{"g", "h"}
		i := 0
		for b.Loop() { // MaxGrants 1: each call drops the other grant and makes this one
			if _, err := m.Grant(keys[i]).Token(); err != nil {
				b.Fatal(err)
			}
			i ^= 1
		}
		b.ReportMetric(float64(cs.total()-base)/float64(b.N), "calls/use")
	})
}

// BenchmarkManagerFirstUseFlood: the first use of a tenant's grant the Manager does not hold
// (MaxGrants 1,000 of 10,000 tenants, each use made from the in-memory Store), without and
// with a flood of keys that never held a token (2,000 keys in turn, 2,000 calls before, then 3
// between each timed use, outside the timer): the flood must not change the tenant's cost.
func BenchmarkManagerFirstUseFlood(b *testing.B) {
	tenants := grantKeys(10000)
	floodKeys := make([]string, 2000)
	for i := range floodKeys {
		floodKeys[i] = fmt.Sprintf("flood-%d", i)
	}
	for _, flood := range []bool{false, true} {
		b.Run(fmt.Sprintf("flood=%v", flood), func(b *testing.B) {
			m := oauth2refresh.NewManager(benchEndpoint(&memTransport{}), seededStore(tenants),
				&oauth2refresh.ManagerOptions{MaxGrants: 1000})
			holdAll(b, tenants[:1000], func(k string) (*oauth2.Token, error) { return m.Grant(k).Token() })
			n := 0
			attack := func(calls int) {
				for range calls {
					n++ // 2,000 keys in turn: more than the Manager keeps failed
					if _, err := m.Grant(floodKeys[n%len(floodKeys)]).Token(); err == nil {
						b.Fatal("a flood key got a token")
					}
				}
			}
			if flood {
				attack(2000)
			}
			b.ReportAllocs()
			i := 1000
			for b.Loop() {
				if flood {
					b.StopTimer()
					attack(3)
					b.StartTimer()
				}
				if _, err := m.Grant(tenants[i%len(tenants)]).Token(); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(len(oauth2refresh.HeldGrants(m))), "held")
		})
	}
}
