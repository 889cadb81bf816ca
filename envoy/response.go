package envoy

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/usher-dev/usher/authz"
)

// ResponseFrom encodes a decision as a CheckResponse.
//
// An allowed request gets the identity headers, set with
// OVERWRITE_IF_EXISTS_OR_ADD so a client's copy never survives, and
// headers_to_remove with every other client-sent identity header and the
// consumed credential; where the session cookie is to be taken out of the
// Cookie header, the header without it is set the same way. A browser
// sent to log in gets a 302 with its location. A denied request always gets a denied_response
// (never an error_response), so Envoy's failure_mode_allow cannot turn one
// of usher's denials into an allow.
//
// The response shares immutable parts with other responses (a denial's
// headers and body, the decision's removal list): callers must not modify
// it, only marshal or read it, which is safe from many goroutines at once.
func ResponseFrom(d *authz.Decision, realm string) *authv3.CheckResponse {
	if d.Allowed() {
		return allowedResponse(d)
	}
	return deniedResponse(d, realm)
}

// maxIdentityHeaders is how many headers authz.Decision.IdentityHeaders
// sets at most: subject, tenant, email, auth, issuer, space and seats.
const maxIdentityHeaders = 7

// maxSetHeaders is how many headers an allowed response sets at most: the
// identity headers and the Cookie header without the session cookie.
const maxSetHeaders = maxIdentityHeaders + 1

// allowedMessages are the messages of an allowed CheckResponse, allocated
// together: one allocation instead of one per message.
type allowedMessages struct {
	resp   authv3.CheckResponse
	status status.Status
	wrap   authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	list   [maxSetHeaders]*corev3.HeaderValueOption
	opts   [maxSetHeaders]corev3.HeaderValueOption
	values [maxSetHeaders]corev3.HeaderValue
	md     metadataMessages
}

func allowedResponse(d *authz.Decision) *authv3.CheckResponse {
	m := new(allowedMessages)
	n := 0
	set := func(name, value string) {
		if n == maxSetHeaders { // authz set a header this adapter does not know of
			m.ok.Headers = append(m.ok.Headers, header(name, value))
			return
		}
		m.values[n] = corev3.HeaderValue{Key: name, Value: value}
		m.opts[n].Header = &m.values[n]
		m.opts[n].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		m.list[n] = &m.opts[n]
		n++
		m.ok.Headers = m.list[:n]
	}
	d.IdentityHeaders(set)
	if d.Cookie != "" {
		// The client's cookies without the session cookie; when none is
		// left, "cookie" is in d.Remove instead.
		set(authz.HeaderCookie, d.Cookie)
	}
	m.ok.HeadersToRemove = d.Remove
	m.wrap.OkResponse = &m.ok
	m.status.Code = int32(codes.OK)
	m.resp.Status = &m.status
	m.resp.HttpResponse = &m.wrap
	m.resp.DynamicMetadata = m.md.fill(d)
	return &m.resp
}

// deniedMessages are the messages of a denied CheckResponse, allocated
// together.
type deniedMessages struct {
	resp   authv3.CheckResponse
	status status.Status
	wrap   authv3.CheckResponse_DeniedResponse
	denied authv3.DeniedHttpResponse
	http   typev3.HttpStatus
	md     metadataMessages
	// A redirect's headers: its location is the request's own.
	redirect [2]*corev3.HeaderValueOption
	opts     [2]corev3.HeaderValueOption
	values   [2]corev3.HeaderValue
}

func deniedResponse(d *authz.Decision, realm string) *authv3.CheckResponse {
	m := new(deniedMessages)
	m.http.Code = typev3.StatusCode(d.Status)
	if d.Location != "" {
		m.denied = authv3.DeniedHttpResponse{Status: &m.http, Headers: m.redirectHeaders(d.Location)}
	} else {
		parts := denialParts(realm, d)
		m.denied = authv3.DeniedHttpResponse{Status: &m.http, Headers: parts.headers, Body: parts.body}
	}
	m.wrap.DeniedResponse = &m.denied
	m.status = status.Status{Code: int32(grpcCode(d.Status)), Message: string(d.Reason)}
	m.resp.Status = &m.status
	m.resp.HttpResponse = &m.wrap
	m.resp.DynamicMetadata = m.md.fill(d)
	return &m.resp
}

// denial is what every denial with the same realm, reason and status
// shares: its headers and body, transport-neutral (fields, for HTTP check
// mode) and as gRPC header options. All are immutable once built.
type denial struct {
	fields  []Field
	headers []*corev3.HeaderValueOption
	body    string
}

// Field is one response header of an answer, with a lower-case name.
type Field struct{ Name, Value string }

type denialKey struct {
	realm  string
	reason authz.Reason
	status int
}

var (
	denials     sync.Map // denialKey → *denial
	denialCount atomic.Int32
)

// maxDenials bounds the denials kept: reasons are a fixed set of codes and
// realms one per server, so this is only a guard against a Decider that
// makes up reasons.
const maxDenials = 256

// denialParts returns the headers and body of a denial: the one answer
// gRPC Check and HTTP check mode both send. A header a denial needs goes
// into denialFields, and both transports carry it.
func denialParts(realm string, d *authz.Decision) *denial {
	key := denialKey{realm, d.Reason, d.Status}
	if v, ok := denials.Load(key); ok {
		return v.(*denial)
	}
	fields := denialFields(realm, d)
	headers := make([]*corev3.HeaderValueOption, len(fields))
	for i, f := range fields {
		headers[i] = header(f.Name, f.Value)
	}
	p := &denial{fields: fields, headers: headers, body: `{"error":"` + string(d.Reason) + `"}`}
	if denialCount.Load() < maxDenials {
		if v, loaded := denials.LoadOrStore(key, p); loaded {
			return v.(*denial)
		}
		denialCount.Add(1)
	}
	return p
}

// redirectHeaders are the headers of a denial that sends a browser to log
// in (a 302): where to, and that no cache keeps the answer.
func (m *deniedMessages) redirectHeaders(location string) []*corev3.HeaderValueOption {
	m.values[0] = corev3.HeaderValue{Key: "location", Value: location}
	m.values[1] = corev3.HeaderValue{Key: "cache-control", Value: "no-store"}
	for i := range m.opts {
		m.opts[i].Header = &m.values[i]
		m.opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		m.redirect[i] = &m.opts[i]
	}
	return m.redirect[:]
}

// redirectFields are redirectHeaders for HTTP check mode.
func redirectFields(d *authz.Decision) []Field {
	return []Field{{"location", d.Location}, {"cache-control", "no-store"}}
}

// denialFields are the response headers of a denial, in order.
func denialFields(realm string, d *authz.Decision) []Field {
	fields := []Field{
		{"content-type", "application/json"},
		{"cache-control", "no-store"},
	}
	if wa := wwwAuthenticate(d, realm); wa != "" {
		fields = append(fields, Field{"www-authenticate", wa})
	}
	return slices.Clip(fields)
}

func header(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// wwwAuthenticate builds the RFC 6750 §3 challenge: no error code when
// there was no credential at all, invalid_token for a bad one, and
// insufficient_scope for a valid one without the permission.
func wwwAuthenticate(d *authz.Decision, realm string) string {
	base := "Bearer realm=" + strconv.Quote(realm)
	switch {
	case d.Reason == authz.ReasonCredentialMissing:
		return base
	case d.Status == 401:
		return base + `, error="invalid_token", error_description="` + string(d.Reason) + `"`
	case d.Reason == authz.ReasonPermissionDenied:
		return base + `, error="insufficient_scope", error_description="` + string(d.Reason) + `"`
	}
	return ""
}

func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case 200:
		return codes.OK
	case 302: // a browser without a usable session, sent to log in
		return codes.Unauthenticated
	case 400:
		return codes.InvalidArgument
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 503:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// maxMetadata is how many fields metadata sets at most.
const maxMetadata = 8

// metadataMessages are the messages of the dynamic metadata, allocated
// with the response's.
type metadataMessages struct {
	st      structpb.Struct
	values  [maxMetadata]structpb.Value
	strings [maxMetadata]structpb.Value_StringValue
	n       int
}

// fill sets the dynamic metadata Envoy keeps under the ext_authz filter's
// namespace for access logs: the same facts as the identity headers, plus
// the reason.
func (m *metadataMessages) fill(d *authz.Decision) *structpb.Struct {
	size := 1
	if d.Identity.Method != authz.AuthNone {
		size = maxMetadata
	}
	m.st.Fields = make(map[string]*structpb.Value, size)
	m.set("reason", string(d.Reason))
	if d.Identity.Method != authz.AuthNone {
		m.set("auth", string(d.Identity.Method))
		m.set("subject", d.Identity.Subject)
		m.set("tenant", d.Identity.Tenant)
		if d.Identity.Email != "" {
			m.set("email", d.Identity.Email)
		}
		if d.Identity.Issuer != "" {
			m.set("issuer", d.Identity.Issuer)
		}
		if d.Space != "" {
			m.set("space", d.Space)
		}
		if d.Seats != "" {
			m.set("seats", d.Seats)
		}
	}
	return &m.st
}

func (m *metadataMessages) set(name, value string) {
	m.strings[m.n].StringValue = value
	m.values[m.n].Kind = &m.strings[m.n]
	m.st.Fields[name] = &m.values[m.n]
	m.n++
}
