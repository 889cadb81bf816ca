package envoy

import (
	"strconv"

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
// consumed credential. A denied request always gets a denied_response
// (never an error_response), so Envoy's failure_mode_allow cannot turn one
// of usher's denials into an allow.
func ResponseFrom(d *authz.Decision, realm string) *authv3.CheckResponse {
	if d.Allowed() {
		ok := &authv3.OkHttpResponse{HeadersToRemove: d.Remove}
		d.IdentityHeaders(func(name, value string) {
			ok.Headers = append(ok.Headers, header(name, value))
		})
		return &authv3.CheckResponse{
			Status:          &status.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: metadata(d),
		}
	}
	headers := []*corev3.HeaderValueOption{
		header("content-type", "application/json"),
		header("cache-control", "no-store"),
	}
	if wa := wwwAuthenticate(d, realm); wa != "" {
		headers = append(headers, header("www-authenticate", wa))
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(grpcCode(d.Status)), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    `{"error":"` + string(d.Reason) + `"}`,
		}},
		DynamicMetadata: metadata(d),
	}
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

// metadata is the dynamic metadata Envoy keeps under the ext_authz filter's
// namespace for access logs: the same facts as the identity headers, plus
// the reason.
func metadata(d *authz.Decision) *structpb.Struct {
	f := make(map[string]*structpb.Value, 6)
	f["reason"] = structpb.NewStringValue(string(d.Reason))
	if d.Identity.Method != authz.AuthNone {
		f["auth"] = structpb.NewStringValue(string(d.Identity.Method))
		f["subject"] = structpb.NewStringValue(d.Identity.Subject)
		f["tenant"] = structpb.NewStringValue(d.Identity.Tenant)
		if d.Identity.Email != "" {
			f["email"] = structpb.NewStringValue(d.Identity.Email)
		}
		if d.Identity.Issuer != "" {
			f["issuer"] = structpb.NewStringValue(d.Identity.Issuer)
		}
		if d.Space != "" {
			f["space"] = structpb.NewStringValue(d.Space)
		}
		if d.Seats != "" {
			f["seats"] = structpb.NewStringValue(d.Seats)
		}
	}
	return &structpb.Struct{Fields: f}
}
