module github.com/tokenkit/oauth2refresh/examples/demo

go 1.26

require (
	github.com/tokenkit/oauth2refresh v0.0.0
	github.com/tokenkit/oauth2refresh/conformance v0.0.0
)

replace (
	github.com/tokenkit/oauth2refresh => ../..
	github.com/tokenkit/oauth2refresh/conformance => ../../conformance
	github.com/tokenkit/oauth2refresh/store/postgres => ../../store/postgres
	github.com/tokenkit/oauth2refresh/store/redis => ../../store/redis
)
