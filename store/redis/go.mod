module github.com/tokenkit/oauth2refresh/store/redis

go 1.26

require github.com/tokenkit/oauth2refresh v0.0.0

replace github.com/tokenkit/oauth2refresh => ../..
