package idp

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// uuid is the shape of Entra ID's application (client) ids.
var uuid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CheckAudience warns when a trust's audience looks like an OAuth client
// id and nothing else tells access tokens from ID tokens: an OpenID
// provider issues ID tokens with the client id as their audience (OpenID
// Connect Core §2), so any app's sign-in would then pass as an access token
// to usher. A required token type (at+jwt) or a list of allowed clients
// that leaves the audience out settles it.
func CheckAudience(audience, tokenType string, clientIDs []string) string {
	if tokenType != "" || len(clientIDs) > 0 && !slices.Contains(clientIDs, audience) {
		return ""
	}
	if !uuid.MatchString(audience) && !strings.HasSuffix(audience, ".apps.googleusercontent.com") && !slices.Contains(clientIDs, audience) {
		return ""
	}
	return fmt.Sprintf("audience %s looks like a client id: ID tokens issued to that client carry it too and would pass as access tokens; "+
		"require a token type (--token-type at+jwt) or name the clients allowed, the audience not among them (--client-id)", audience)
}
