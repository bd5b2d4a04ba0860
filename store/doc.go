// Package store is for whoever writes an oauth2refresh.Store, and for whoever seals one.
//
// A Store keeps each grant's token in the stored-token format: Encode writes it, with the
// version the store counts, and Decode reads it back, a damaged value being a
// *CorruptTokenError that never quotes it. The stores of this repository all do so (the
// package github.com/tokenkit/oauth2refresh/store/filestore, and the modules
// github.com/tokenkit/oauth2refresh/store/redisstore and .../store/pgstore), and the package
// github.com/tokenkit/oauth2refresh/store/storetest checks any Store against the promises of
// the interface.
//
// Seal keeps the tokens of any Store encrypted and authenticated at rest (AES-256-GCM, keys
// that rotate), so that whoever reads the store sees no token and whoever writes it cannot
// change or move one:
//
//	sealer, err := NewSealer(map[string][]byte{"2026": key}, "2026") // 32 bytes from a secret manager
//	if err != nil {
//		return err
//	}
//	s := Seal(&filestore.Store{Dir: dir}, sealer)
//	ts := endpoint.TokenSource(ctx, nil, oauth2refresh.WithStore(s, "tenant-42"))
//
// A value that does not open is a *SealError, and the TokenSource then sends nothing.
package store
