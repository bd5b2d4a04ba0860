// Package oauth2refresh is an OAuth 2.0 refresh client for Go (RFC 6749 §6) that drops into
// the golang.org/x/oauth2 ecosystem.
//
// TODO: full package doc.
package oauth2refresh
