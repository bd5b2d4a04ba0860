package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenkit/oauth2refresh/store/filestore"
)

func TestProviderDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache) // os.UserCacheDir on Linux and the BSDs
	t.Setenv("HOME", cache)           // and elsewhere, under it
	userCache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got, err := providerDir(getenv); err != nil || got != filepath.Join(userCache, "oauth2refresh-demo") {
		t.Errorf("providerDir = %q, %v; want oauth2refresh-demo in %s", got, err, userCache)
	}
	env["OAUTH2REFRESH_TOKEN_DIR"] = "/somewhere/else"
	if got, err := providerDir(getenv); err != nil || got != "/somewhere/else" {
		t.Errorf("providerDir with OAUTH2REFRESH_TOKEN_DIR = %q, %v; want /somewhere/else", got, err)
	}
	if runtime.GOOS == "linux" {
		delete(env, "OAUTH2REFRESH_TOKEN_DIR")
		t.Setenv("XDG_CACHE_HOME", "")
		t.Setenv("HOME", "")
		if got, err := providerDir(getenv); err == nil || !strings.Contains(err.Error(), "set OAUTH2REFRESH_TOKEN_DIR") {
			t.Errorf("providerDir without a cache directory = %q, %v; want an error saying to set OAUTH2REFRESH_TOKEN_DIR", got, err)
		}
	}
}

// TestDemoProviderDefaultDir: without OAUTH2REFRESH_TOKEN_DIR, the real-provider mode keeps
// its token file in the user's cache directory. The token endpoint is not listening: the
// refresh token is saved, then the refresh fails.
func TestDemoProviderDefaultDir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sets the cache directory through XDG_CACHE_HOME")
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	env := map[string]string{
		"OAUTH2REFRESH_TOKEN_URL":     "http://127.0.0.1:1/token",
		"OAUTH2REFRESH_CLIENT_ID":     "app",
		"OAUTH2REFRESH_REFRESH_TOKEN": "rt-secret",
	}
	var out bytes.Buffer
	if err := run(context.Background(), defaultConfig(&out, func(k string) string { return env[k] })); err == nil {
		t.Fatalf("run succeeded with no token endpoint")
	}
	dir := filepath.Join(cache, "oauth2refresh-demo")
	checkOutput(t, out.String(), []string{"saved with SaveToken to " + regexp.QuoteMeta(tokenFile(dir)) + "\n"}, "rt-secret")
	tok, err := (&filestore.Store{Dir: dir}).Load(context.Background(), storeKey)
	if err != nil || tok == nil || tok.RefreshToken != "rt-secret" {
		t.Errorf("token file in %s: %v, %v; want the refresh token", dir, tok, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("token directory: %v, %v; want mode 0700", fi, err)
	}
}

// TestDemoProviderUnsafeDir: a token directory that others may write to is refused, and
// nothing is written there.
func TestDemoProviderUnsafeDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OAUTH2REFRESH_TOKEN_URL":     "http://127.0.0.1:1/token",
		"OAUTH2REFRESH_CLIENT_ID":     "app",
		"OAUTH2REFRESH_REFRESH_TOKEN": "rt-secret",
		"OAUTH2REFRESH_TOKEN_DIR":     dir,
	}
	var out bytes.Buffer
	err := run(context.Background(), defaultConfig(&out, func(k string) string { return env[k] }))
	var ue *filestore.UnsafeDirError
	if !errors.As(err, &ue) || ue.Dir != dir {
		t.Fatalf("run = %v; want an *filestore.UnsafeDirError for %s", err, dir)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("the unsafe directory holds %v (%v); want nothing", entries, err)
	}
}
