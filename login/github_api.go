package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The parts of GitHub's REST responses usher reads.
type (
	gitHubUser struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	gitHubEmail struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	gitHubOrg struct {
		Login string `json:"login"`
	}
	gitHubTeam struct {
		Slug         string    `json:"slug"`
		Organization gitHubOrg `json:"organization"`
	}
)

// identity reads the person behind access: GET /user for the numeric
// id, /user/emails for the verified primary email, /user/teams (and
// /user/orgs when orgs are restricted) for groups and membership.
func (g *GitHub) identity(ctx context.Context, access string) (Identity, error) {
	var u gitHubUser
	if err := g.getJSON(ctx, access, g.endpoint("/user"), &u); err != nil {
		return Identity{}, fmt.Errorf("github user: %w", err)
	}
	if u.ID <= 0 {
		return Identity{}, fmt.Errorf("github user: no numeric id in the response")
	}
	id := Identity{
		Issuer:  g.api.String(),
		Subject: strconv.FormatInt(u.ID, 10),
		Name:    u.Name,
	}
	if id.Name == "" {
		id.Name = u.Login
	}
	var emails []gitHubEmail
	if err := g.getPages(ctx, access, "/user/emails", func(raw json.RawMessage) error {
		var page []gitHubEmail
		err := json.Unmarshal(raw, &page)
		emails = append(emails, page...)
		return err
	}); err != nil {
		return Identity{}, fmt.Errorf("github emails: %w", err)
	}
	// Only the primary address counts, and only when verified: a
	// person can add anyone's address unverified and make it primary
	// (catalogue row 61).
	i := slices.IndexFunc(emails, func(e gitHubEmail) bool { return e.Primary })
	if i < 0 || !emails[i].Verified || emails[i].Email == "" {
		return Identity{}, fmt.Errorf("github user %s: %w: no verified primary email", id.Subject, ErrEmailUnverified)
	}
	id.Email, id.EmailVerified = emails[i].Email, true

	orgs := map[string]bool{}
	teams := map[string]bool{}
	if err := g.getPages(ctx, access, "/user/teams", func(raw json.RawMessage) error {
		var page []gitHubTeam
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		for _, t := range page {
			org := strings.ToLower(t.Organization.Login)
			if org == "" || t.Slug == "" {
				return errors.New("a team without its organisation or slug")
			}
			orgs[org] = true
			teams[org+"/"+strings.ToLower(t.Slug)] = true
		}
		return nil
	}); err != nil {
		return Identity{}, fmt.Errorf("github teams: %w", err)
	}
	if len(g.allowedOrgs) > 0 {
		if err := g.getPages(ctx, access, "/user/orgs", func(raw json.RawMessage) error {
			var page []gitHubOrg
			err := json.Unmarshal(raw, &page)
			for _, o := range page {
				orgs[strings.ToLower(o.Login)] = true
			}
			return err
		}); err != nil {
			return Identity{}, fmt.Errorf("github orgs: %w", err)
		}
	}
	if !g.member(orgs, teams) {
		return Identity{}, fmt.Errorf("github user %s: %w", id.Subject, ErrGitHubMembership)
	}
	for t := range teams {
		id.Groups = append(id.Groups, t)
	}
	slices.Sort(id.Groups)
	return id, nil
}

// member reports whether orgs and teams meet the provider's restriction:
// none set, or at least one allowed org or team among them.
func (g *GitHub) member(orgs, teams map[string]bool) bool {
	if len(g.allowedOrgs) == 0 && len(g.allowedTeams) == 0 {
		return true
	}
	for o := range orgs {
		if g.allowedOrgs[o] {
			return true
		}
	}
	for t := range teams {
		if g.allowedTeams[t] {
			return true
		}
	}
	return false
}

// endpoint is the API URL of path (under an Enterprise server's /api/v3).
func (g *GitHub) endpoint(path string) *url.URL {
	u := *g.api
	u.Path += path
	return &u
}

// getPages GETs path 100 items at a time, handing each page to add, and
// follows the Link header's rel="next" only while it stays on the API
// (the token must never go elsewhere), for at most gitHubMaxPages.
func (g *GitHub) getPages(ctx context.Context, access, path string, add func(json.RawMessage) error) error {
	u := g.endpoint(path)
	u.RawQuery = "per_page=100"
	for range gitHubMaxPages {
		var raw json.RawMessage
		next, err := g.get(ctx, access, u, &raw)
		if err != nil {
			return err
		}
		if err := add(raw); err != nil {
			return fmt.Errorf("decode %s: %w", u.Path, err)
		}
		if next == "" {
			return nil
		}
		if u, err = g.sameAPI(next); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: more than %d pages", path, gitHubMaxPages)
}

// sameAPI parses a next link and refuses one off the API base.
func (g *GitHub) sameAPI(next string) (*url.URL, error) {
	u, err := url.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("next page link: %w", err)
	}
	if u.Scheme != g.api.Scheme || u.Host != g.api.Host || u.User != nil ||
		!strings.HasPrefix(u.Path, g.api.Path+"/") {
		return nil, fmt.Errorf("next page link %q leaves the API %s", next, g.api)
	}
	return u, nil
}

func (g *GitHub) getJSON(ctx context.Context, access string, u *url.URL, v any) error {
	_, err := g.get(ctx, access, u, v)
	return err
}

// get GETs u with the token and decodes the JSON answer into v; it
// returns the next page's link, if any. 401 wraps ErrIdPRefused.
func (g *GitHub) get(ctx context.Context, access string, u *url.URL, v any) (next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil) //nolint:gosec // the configured GitHub API; next links are kept on its host
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.client.Do(req) //nolint:gosec // the configured GitHub API, next links kept on its host (nextLink)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, gitHubMaxBody+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", u.Path, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("%s: %w (%s)", u.Path, ErrIdPRefused, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s: %s", u.Path, resp.Status)
	case len(body) > gitHubMaxBody:
		return "", fmt.Errorf("%s: response over %d bytes", u.Path, gitHubMaxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return "", fmt.Errorf("decode %s: %w", u.Path, err)
	}
	return nextLink(resp.Header.Get("Link")), nil
}

// nextLink finds rel="next" in a Link header (RFC 8288) as GitHub
// writes it: <URL>; rel="next", <URL>; rel="last".
func nextLink(header string) string {
	for part := range strings.SplitSeq(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			if strings.TrimSpace(p) == `rel="next"` {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}
