package native

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/slipway/slipway/appliance/task"
	"github.com/slipway/slipway/store"
)

func TestNaturalCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"r2", "r10", -1},
		{"r10", "r2", 1},
		{"r02", "r2", 1}, // same value: the shorter first
		{"rack-a", "rack-b", -1},
		{"fra1-r12", "fra1-r9", 1},
		{"fra10-r1", "fra9-r1", 1},
		{"r1", "r1", 0},
		{"r1", "r1a", -1},
		{"99999999999999999999999", "100000000000000000000000", -1}, // past uint64, by value still
		{"", "a", -1},
	} {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// The racks view gets every machine, racked in its rack by slot and the
// racks in the order people count them, the others apart, across more
// than one page of the store. A site design's nodes have a rack and no
// slot: they come last in theirs, with no tray (tray 0 is a slot).
func TestRacksGroupsEveryMachineBySlot(t *testing.T) {
	s := startMachinesServer(t)
	type placed struct {
		id, rack string
		tray     int
		source   string
	}
	var machines []placed
	for i := range racksPage + 3 { // more than a page
		machines = append(machines, placed{fmt.Sprintf("m%05d", i), fmt.Sprintf("r%d", 10-i%3), (racksPage + 3 - i) % 40, "config"})
	}
	machines = append(machines, placed{"loose-2", "", 0, "config"}, placed{"loose-10", "", 0, "config"},
		placed{"a-designed", "r9", 0, "design"}, placed{"b-designed", "r9", 0, "design"})
	err := s.db.Update(context.Background(), func(tx *store.Tx) error {
		for i, m := range machines {
			_, err := tx.CreateMachine(store.Machine{ID: m.id, MACs: []string{fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255)},
				Source: m.source, State: "created", StateJSON: `{"state":"created"}`, RackID: m.rack, Tray: m.tray, TrayKnown: m.source == "config", TrayType: "compute"}, "inventory")
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s.base+"/api/v1/racks")
	var got struct {
		Racks    []rackViewJSON `json:"racks"`
		Unracked []trayJSON     `json:"unracked"`
		Total    int            `json:"machines_total"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /api/v1/racks: %d %v", code, err)
	}
	var ids []string
	n := 0
	for _, r := range got.Racks {
		ids = append(ids, r.ID)
		if !slices.IsSortedFunc(r.Trays, func(a, b trayJSON) int { return compareTrays(a.Tray, b.Tray) }) {
			t.Errorf("rack %s's trays are not in slot order", r.ID)
		}
		if r.ID == "r9" {
			last := r.Trays[len(r.Trays)-2:]
			if last[0].MachineID != "a-designed" || last[1].MachineID != "b-designed" || last[0].Tray != nil || last[1].Tray != nil {
				t.Errorf("rack r9 ends with %+v and %+v, want the two designed nodes without a tray", last[0], last[1])
			}
		}
		for _, tr := range r.Trays[:1] {
			if tr.Tray == nil || *tr.Tray != 0 {
				t.Errorf("rack %s's first tray %+v has no slot 0", r.ID, tr)
			}
		}
		for _, tr := range r.Trays {
			if tr.State != "created" || tr.BMC != "none" {
				t.Errorf("tray %+v", tr)
			}
		}
		n += len(r.Trays)
	}
	if !slices.Equal(ids, []string{"r8", "r9", "r10"}) {
		t.Errorf("racks in the order %v, want r8 r9 r10", ids)
	}
	if n != racksPage+5 || got.Total != racksPage+7 || len(got.Unracked) != 2 || got.Unracked[0].MachineID != "loose-2" {
		t.Errorf("%d racked, %d in all, unracked %+v", n, got.Total, got.Unracked)
	}
}

func TestBMCWord(t *testing.T) {
	for _, tt := range []struct {
		reachable bool
		lastError string
		polled    bool
		want      string
	}{
		{false, "", false, "new"},
		{true, "", true, "reachable"},
		{false, "401 Unauthorized", true, "unusable"},
		{true, "firmware inventory: 500", true, "unusable"},
		{false, "", true, "unusable"},
	} {
		if got := bmcWord(tt.reachable, tt.lastError, tt.polled); got != tt.want {
			t.Errorf("bmcWord(%v, %q, %v) = %q, want %q", tt.reachable, tt.lastError, tt.polled, got, tt.want)
		}
	}
}

type tasksReader = Tasks

// batchTasks is a Tasks whose batches are listed whole, as the store
// lists them, and that counts how often each is read.
type batchTasks struct {
	tasksReader // the rest, unused here
	unfinished  []task.Task
	members     map[string][]task.Task // by kind + "/" + batch
	reads       map[string]int
}

func (b *batchTasks) Unfinished(context.Context) ([]task.Task, error) { return b.unfinished, nil }

func (b *batchTasks) TasksInBatch(_ context.Context, kind, batch string) ([]task.Task, error) {
	b.reads[kind+"/"+batch]++
	return b.members[kind+"/"+batch], nil
}

// The racks' task marks count every unfinished task, however many, and
// hold every member of each batch under way (its finished ones too, each
// batch read once); a task of no batch is counted and no more.
func TestTrayTasksCountEveryTaskAndWholeBatches(t *testing.T) {
	member := func(kind, machine, batch, status string) task.Task {
		return task.Task{Kind: kind, MachineID: machine, Status: status, Params: json.RawMessage(fmt.Sprintf(`{"batch":%q}`, batch))}
	}
	fake := &batchTasks{members: map[string][]task.Task{}, reads: map[string]int{}}
	for i := range 1500 { // more than any page of /tasks
		status := "running"
		if i%3 == 0 {
			status = "succeeded"
		}
		tk := member("firmware-update", fmt.Sprintf("tray-%d", i), "b1", status)
		fake.members["firmware-update/b1"] = append(fake.members["firmware-update/b1"], tk)
		if status == "running" {
			fake.unfinished = append(fake.unfinished, tk)
		}
	}
	dpu := member("dpu-reprovision", "tray-7", "b1", "queued") // another kind's batch of the same name
	fake.members["dpu-reprovision/b1"] = []task.Task{dpu}
	fake.unfinished = append(fake.unfinished, dpu, task.Task{Kind: "power", MachineID: "tray-7", Status: "queued", Params: json.RawMessage(`{}`)})

	marks, err := readTrayTasks(context.Background(), fake)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.reads) != 0 {
		t.Errorf("counting running tasks read batches %v: the racks answer does not need them", fake.reads)
	}
	members, err := marks.batchMembers(context.Background(), fake)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(members); got != 1501 {
		t.Errorf("batch members: %d, want all 1501 (1500 firmware, 1 DPU)", got)
	}
	if marks.running["tray-7"] != 3 || marks.running["tray-1"] != 1 || marks.running["tray-0"] != 0 {
		t.Errorf("running: tray-7 %d (want 3), tray-1 %d (want 1), tray-0 %d (want 0: its task succeeded)",
			marks.running["tray-7"], marks.running["tray-1"], marks.running["tray-0"])
	}
	if fake.reads["firmware-update/b1"] != 1 || fake.reads["dpu-reprovision/b1"] != 1 || len(fake.reads) != 2 {
		t.Errorf("batches read %v; want each once", fake.reads)
	}
}

// The API's answers go compressed to a client that accepts it, and in
// full to one that does not.
func TestAnswersAreCompressedForClientsThatAccept(t *testing.T) {
	s := startMachinesServer(t)
	err := s.db.Update(context.Background(), func(tx *store.Tx) error {
		for i := range 500 {
			_, err := tx.CreateMachine(store.Machine{ID: fmt.Sprintf("m%05d", i), MACs: []string{fmt.Sprintf("52:54:00:00:%02x:%02x", i>>8, i&255)},
				Source: "config", State: "created", StateJSON: `{"state":"created"}`, RackID: fmt.Sprintf("r%d", i/40), Tray: i % 40}, "inventory")
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(encoding string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/api/v1/racks", nil)
		req.SetBasicAuth("vic", "vic-password")
		req.Header.Set("Accept-Encoding", encoding)
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decoding
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	plainResp, plain := fetch("identity")
	zippedResp, zipped := fetch("gzip")
	if plainResp.Header.Get("Content-Encoding") != "" || !json.Valid(plain) {
		t.Fatalf("to a client that does not accept compression: %q, valid JSON %v", plainResp.Header.Get("Content-Encoding"), json.Valid(plain))
	}
	if zippedResp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", zippedResp.Header.Get("Content-Encoding"))
	}
	r, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(unzipped, plain) {
		t.Fatalf("the compressed answer is not the plain one: %v", err)
	}
	if len(zipped)*4 > len(plain) {
		t.Errorf("compressed %d bytes into %d: less than 4×", len(plain), len(zipped))
	}
}
