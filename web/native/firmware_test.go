package native

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway/appliance/firmware"
	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/testbed/testkit"
	"github.com/slipway/slipway/web/nodes"
)

// library is a real image library with a fake update engine.
type library struct {
	*firmware.Library
	started []string
}

func (l *library) Start(_ context.Context, machineID, imageID string) (task.Task, error) {
	l.started = append(l.started, machineID+" "+imageID)
	return task.Task{ID: "t1", Kind: firmware.TaskKind, MachineID: machineID, Status: task.Queued, Params: json.RawMessage(`{"image_id":"` + imageID + `"}`)}, nil
}

func TestFirmwareUploadStreamsAndChecks(t *testing.T) {
	db, commit := testkit.OpenStore(t)
	lib, err := firmware.NewLibrary(filepath.Join(t.TempDir(), "firmware"), db, commit)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(lib.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fw := &library{Library: lib}
	s, err := newTestServer(Services{Firmware: fw, Tasks: readOnlyTasks{task.Reader{DB: db}}, Auth: testAuth(t)},
		nodes.New(nodes.Config{FirmwareRoot: root}))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()

	image := bytes.Repeat([]byte("firmware"), 1<<20) // 8 MiB: more than any other body may be
	sum := sha256.Sum256(image)
	digest := hex.EncodeToString(sum[:])
	send := func(method, path, user string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		if u, p, ok := strings.Cut(user, ":"); ok {
			req.SetBasicAuth(u, p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, method, path, user string
		body                     []byte
		status                   int
		want                     string
	}{
		// Refusals come before the body is read: small bodies, or the client
		// would see its write cut off instead of the answer.
		{"operator may not upload", "POST", "/api/v1/firmware?component=BMC&version=2&sha256=" + digest, "otto:otto-password", []byte("x"), 403, "needs admin"},
		{"damaged upload", "POST", "/api/v1/firmware?component=BMC&version=2&sha256=" + strings.Repeat("0", 64), "ann:ann-password", image, 400, "nothing was kept"},
		{"no checksum", "POST", "/api/v1/firmware?component=BMC&version=2", "ann:ann-password", []byte("x"), 400, "sha256"},
		{"upload", "POST", "/api/v1/firmware?component=BMC&version=2&filename=bmc.bin&sha256=" + digest, "ann:ann-password", image, 201, `"url":"/firmware/` + digest + `.bin"`},
		{"list", "GET", "/api/v1/firmware", "vic:vic-password", nil, 200, `"version":"2"`},
		{"start an update", "POST", "/api/v1/machines/m1/firmware", "ann:ann-password", []byte(`{"image_id":"` + digest + `"}`), 202, `"task_id":"t1"`},
		{"start without an image", "POST", "/api/v1/machines/m1/firmware", "ann:ann-password", []byte(`{}`), 400, "image_id"},
		{"tasks", "GET", "/api/v1/tasks", "vic:vic-password", nil, 200, `"tasks":[]`},
		{"unknown task", "GET", "/api/v1/tasks/nope", "vic:vic-password", nil, 404, "not found"},
		{"a viewer may not cancel", "POST", "/api/v1/tasks/t1/cancel", "vic:vic-password", nil, 403, "needs operator"},
		{"cancel a task that ended", "POST", "/api/v1/tasks/t1/cancel", "otto:otto-password", nil, 409, "has ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := send(tt.method, tt.path, tt.user, tt.body)
			if code != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("%d %.300s, want %d with %q", code, body, tt.status, tt.want)
			}
		})
	}
	// Other endpoints refuse a big body from its Content-Length alone.
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the server reads a little of it before the handler refuses
		fmt.Fprintf(conn, "POST /heartbeat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(image))
		_, _ = conn.Write(image)
	}()
	answer, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(answer, "413") {
		t.Errorf("8 MiB heartbeat: %q", answer)
	}
	// The BMC's fetch gets the very bytes.
	resp, err := http.Get(base + "/firmware/" + firmware.FileName(digest))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, image) {
		t.Errorf("served %d bytes, not the image", len(got))
	}
	if strings.Join(fw.started, ";") != "m1 "+digest {
		t.Errorf("started %v", fw.started)
	}
}

// readOnlyTasks are stored tasks no engine runs: nothing to cancel.
type readOnlyTasks struct{ task.Reader }

func (readOnlyTasks) Cancel(_ context.Context, id, _ string) (task.Task, error) {
	return task.Task{}, fmt.Errorf("task %s: %w", id, task.ErrFinished)
}
