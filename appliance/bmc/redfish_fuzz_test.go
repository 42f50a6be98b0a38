package bmc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A BMC answers whatever it answers: a poll of a service whose systems,
// system, NICs and firmware documents are arbitrary bytes ends with an
// inventory or an error, never a panic or a hang.
func FuzzRedfishAnswers(f *testing.F) {
	f.Add([]byte(`{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}]}`), []byte(`{"Id":"1","PowerState":"On","EthernetInterfaces":{"@odata.id":"/redfish/v1/Systems/1/EthernetInterfaces"}}`))
	f.Add([]byte(`{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}],"Members@odata.count":"x"}`), []byte(`{"Id":1,"Status":{"Health":[]}}`))
	f.Add([]byte(`{"Members":null}`), []byte(``))
	f.Add([]byte(`[`), []byte(`{"Links":{"HostInterface":{"@odata.id":{}}}}`))
	f.Fuzz(func(t *testing.T, collection, member []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch {
			case r.URL.Path == "/redfish/v1/" || r.URL.Path == "/redfish/v1":
				w.Write([]byte(`{"@odata.id":"/redfish/v1/","RedfishVersion":"1.6.0","Systems":{"@odata.id":"/redfish/v1/Systems"},
					"Managers":{"@odata.id":"/redfish/v1/Managers"},"UpdateService":{"@odata.id":"/redfish/v1/UpdateService"}}`))
			case strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 2: // a collection
				w.Write(collection)
			default:
				w.Write(member)
			}
		}))
		defer srv.Close()
		h := newHTTPClients(2*time.Second, 4, nil)
		defer h.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := h.connect(ctx, srv.URL, "u", "p", true)
		if err != nil {
			return
		}
		defer c.Logout()
		_, _ = collect(c, "", nil)
		_, _ = managerVersion(c)
		_, _ = firmwareInventory(c)
	})
}
