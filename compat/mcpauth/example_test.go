package mcpauth_test

import (
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/tokenkit/oauth2refresh"
	"github.com/tokenkit/oauth2refresh/compat/mcpauth"
	"github.com/tokenkit/oauth2refresh/store/filestore"
)

// An MCP client of the official Go SDK whose tokens come from oauth2refresh: every refresh
// carries the server's resource, the public client authenticates with its client_id alone,
// and the grant lives in a filestore.Store, so that the next start (or another process) resumes it
// and a dead grant sends the user through the authorization again.
func Example() {
	ctx := context.Background()
	dir, err := os.UserConfigDir()
	if err != nil {
		log.Fatal(err)
	}
	grant := &mcpauth.Config{
		Resource: "https://mcp.example.com/mcp",
		Endpoint: oauth2refresh.Endpoint{TokenURL: "https://auth.example.com/token", ClientID: "my-mcp-client"},
		Store:    &filestore.Store{Dir: filepath.Join(dir, "my-mcp-client")},
	}
	initial, err := grant.InitialTokenSource(ctx) // nil the first time: the SDK authorizes
	if err != nil {
		log.Fatal(err)
	}
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: "my-mcp-client"},
		RedirectURL:         "http://127.0.0.1:3142/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			return nil, errors.New("open args.URL in a browser, wait for the redirect")
		},
		NewTokenSource:     grant.NewTokenSource,
		InitialTokenSource: initial,
	})
	if err != nil {
		log.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "my-mcp-client", Version: "v1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: grant.Resource, OAuthHandler: h}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
}
