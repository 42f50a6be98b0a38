package bmc

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
)

// objectsOnly refuses a successful answer to a GET whose body is not a
// JSON object, whatever its Content-Type says (gofish decodes the body
// regardless). Every Redfish resource is an object; gofish decodes some answers
// into a pointer, which a body of `null` leaves nil, and then dereferences
// it in a goroutine of its own, where no recover of ours can reach: one
// malformed answer from one BMC would stop the whole appliance. Refused
// here, it is an error of that BMC's poll like any other.
type objectsOnly struct{ next http.RoundTripper }

func (t objectsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 || req.Method != http.MethodGet {
		return resp, err
	}
	body := bufio.NewReader(resp.Body)
	first, err := firstNonSpace(body)
	if err == io.EOF {
		first, err = '{', nil // no body at all: gofish reports that itself
	}
	if err != nil || first != '{' {
		resp.Body.Close()
		return nil, &notAnObject{path: req.URL.Path, first: first, err: err}
	}
	resp.Body = readCloser{body, resp.Body}
	return resp, nil
}

// firstNonSpace peeks at the first byte of r after JSON whitespace and
// leaves it to be read.
func firstNonSpace(r *bufio.Reader) (byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, r.UnreadByte()
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// notAnObject is a successful answer that is not a JSON object.
type notAnObject struct {
	path  string
	first byte
	err   error // reading the body failed
}

func (e *notAnObject) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: reading the answer: %v", e.path, e.err)
	}
	return fmt.Sprintf("%s: the answer starts with %q, not with a JSON object", e.path, e.first)
}

func (e *notAnObject) Unwrap() error { return e.err }
