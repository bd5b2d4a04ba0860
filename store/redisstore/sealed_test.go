package redisstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/internal/sealtest"
	"github.com/tokenkit/oauth2refresh/store"
	"github.com/tokenkit/oauth2refresh/store/storetest"
	"golang.org/x/oauth2"
)

// The store sealed by store.Seal keeps its promises, and keeps no token in clear.
func TestSealedStore(t *testing.T) {
	s := testStore(t)
	k, err := store.NewSealer(map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32)}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	sealed := store.Seal(s, k)
	storetest.TestStore(t, sealed, storetest.Options{LeasesExpire: true})

	ctx := context.Background()
	key := "sealed-" + time.Now().Format("150405.000000000")
	tok := (&oauth2.Token{AccessToken: "at-secret", RefreshToken: "rt-secret"}).WithExtra(map[string]any{"id_token": "id-secret"})
	if err := oauth2refresh.SaveToken(ctx, sealed, key, tok); err != nil {
		t.Fatal(err)
	}
	v, err := raw(s).Get(ctx, key)
	if err != nil || strings.Contains(v, "secret") || !strings.Contains(v, "sealed.v1.k1.") {
		t.Errorf("stored value = %q, %v; want it sealed", v, err)
	}
	got, err := sealed.Load(ctx, key)
	if err != nil || got.AccessToken != "at-secret" || got.RefreshToken != "rt-secret" || got.Extra("id_token") != "id-secret" {
		t.Errorf("Load = %v, %v; want the token saved", got, err)
	}
}

// Whoever can write to the server cannot make a sealed grant send anything: every edit is a
// *store.SealError (see sealtest.Attacks).
func TestSealedStoreAttacks(t *testing.T) {
	s := testStore(t)
	sealtest.Attacks(t, s, *raw(s))
}
