// Package storetest checks that an implementation of oauth2refresh.Store keeps the promises
// of that interface, as testing/fstest does for file systems. Whoever writes a Store (on
// DynamoDB, etcd, Firestore, ...) calls TestStore from a test of their own package:
//
//	func TestStore(t *testing.T) {
//		s := mystore.New(client, "oauth2refresh-test/")
//		storetest.TestStore(t, s, storetest.Options{LeasesExpire: true})
//	}
//
// TestStore checks what WithStore relies on for "one refresh, everyone picks up the result"
// to hold across processes: that a saved token comes back as it was (Extra aside), that at
// most one lease on a grant is held at a time, that increments under the lease are never lost,
// and, for a store whose leases lapse on their ttl, that a holder whose lease lapsed and was
// taken over can no longer save (fencing) while one whose lease lapsed unnoticed still can.
// It checks that a dead mark (the token WithStore saves for a grant the server refused; see
// oauth2refresh.DeadGrantError) comes back as it was saved, which a store that keeps a token's
// Extra values as store.Encode does gets right, and, with leases that lapse,
// that a lapsed holder cannot save over it. It checks Delete: the token gone, a missing key
// no error, a lease held meanwhile unable to save the grant back, also once new leases were
// granted on the grant started again (a store that deletes its fencing number must not give
// it out again). Given Options.Contents, a listing of everything the store keeps, it checks that
// a key which never held a token leaves nothing (a Lock and Release of it; unknown keys asked
// for through a TokenSource and a Manager) and that Delete leaves nothing of a grant.
// A store that keeps tokens in the format of store.Encode can also have
// that format (with the Extra values it keeps, such as the id_token and the refresh token's
// expiry) and its reports of damaged values checked, through Options.Raw.
//
// BenchHotPath, BenchRefresh, BenchPickUp and BenchRefreshesPerLifetime measure what a store
// adds to a TokenSource, with the token endpoint in memory.
//
// The store of package github.com/tokenkit/oauth2refresh/store/filestore, its sealed form
// (store.Seal) and the stores of the modules github.com/tokenkit/oauth2refresh/store/redisstore
// and .../store/pgstore run this suite against real files and servers.
package storetest
