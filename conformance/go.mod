module github.com/tokenkit/oauth2refresh/conformance

go 1.26

require (
	github.com/google/go-cmp v0.7.0
	github.com/ory/fosite v0.49.0
	github.com/tokenkit/oauth2refresh v0.0.0
	golang.org/x/oauth2 v0.38.0
)

replace (
	github.com/tokenkit/oauth2refresh => ../
	github.com/tokenkit/oauth2refresh/store/postgres => ../store/postgres
	github.com/tokenkit/oauth2refresh/store/redis => ../store/redis
)
