package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// webSocketListener serves MQTT over WebSocket on a listener bound in
// advance. mochi's own WebSocket listener binds inside Serve, where a taken
// port is only logged; binding first lets start-up fail loudly.
type webSocketListener struct {
	id       string
	ln       net.Listener
	server   *http.Server // made up front: Close may run while Serve starts
	upgrader websocket.Upgrader
	log      *slog.Logger
	once     sync.Once
	// connectTimeout is how long an upgraded connection has to send its CONNECT.
	connectTimeout time.Duration

	mu        sync.Mutex
	establish listeners.EstablishFn // set by Serve
}

func newWebSocketListener(id string, ln net.Listener, connectTimeout time.Duration, origins []string) *webSocketListener {
	l := &webSocketListener{
		id:             id,
		ln:             ln,
		connectTimeout: connectTimeout,
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			CheckOrigin:  allowedOrigin(origins),
		},
	}
	// The upgrade request, like the CONNECT after it, has connectTimeout.
	l.server = &http.Server{ReadHeaderTimeout: connectTimeout, Handler: http.HandlerFunc(l.handle)}
	return l
}

// allowedOrigin lets in clients that send no Origin (programs), pages of
// this host, and pages of the origins listed (operators' dashboards): a
// page from anywhere else, open in an operator's browser on the LAN, must
// not read the fleet's events through it.
func allowedOrigin(listed []string) func(*http.Request) bool {
	allowed := map[string]bool{}
	for _, o := range listed {
		allowed[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || allowed[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Hostname(), hostOnly(r.Host))
	}
}

// hostOnly is a Host header without its port.
func hostOnly(hostPort string) string {
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		return h
	}
	return hostPort
}

func (l *webSocketListener) handle(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	establish := l.establish
	l.mu.Unlock()
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered with an HTTP error
	}
	defer c.Close()
	// The HTTP exchange is over: the CONNECT has its own deadline.
	_ = c.NetConn().SetDeadline(time.Now().Add(l.connectTimeout))
	if err := establish(l.id, &webSocketConn{Conn: c.NetConn(), ws: c}); err != nil {
		l.log.Debug("websocket client ended", "error", err)
	}
}

func (l *webSocketListener) ID() string       { return l.id }
func (l *webSocketListener) Address() string  { return l.ln.Addr().String() }
func (l *webSocketListener) Protocol() string { return "ws" }

func (l *webSocketListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

func (l *webSocketListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
	if err := l.server.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("MQTT over WebSocket stopped", "error", err)
	}
}

func (l *webSocketListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.server.Shutdown(ctx)
		_ = l.ln.Close() // if Serve never took it, Shutdown did not close it
	})
	closeClients(l.id)
}

// webSocketConn carries an MQTT byte stream in binary WebSocket messages.
type webSocketConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader // the message being read, nil between messages
}

var errTextMessage = errors.New("MQTT over WebSocket needs binary messages")

func (c *webSocketConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errTextMessage
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *webSocketConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
