package storm

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// watch connects what an operator keeps open during a storm: an MQTT
// subscriber to every machine's state and onboarding (as NICo's
// consumers subscribe), and the console's event stream. Both count what
// they get until ctx ends.
func (s *storm) watch(ctx context.Context) error {
	if s.cfg.MQTTPort != 0 {
		if err := s.subscribe(ctx); err != nil {
			return err
		}
	}
	if s.cfg.APIUser != "" {
		return s.stream(ctx)
	}
	return nil
}

func (s *storm) subscribe(ctx context.Context) error {
	opts := mqtt.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://%s:%d", s.cfg.Server, s.cfg.MQTTPort)).
		SetClientID(fmt.Sprintf("storm-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("storm: MQTT subscriber: connect: %v", tok.Error())
	}
	count := func(mqtt.Client, mqtt.Message) { s.progress.mqtt.Add(1) }
	tok := c.SubscribeMultiple(map[string]byte{"NICO/v1/#": 1, "slipway/v1/#": 1}, count)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.Disconnect(0)
		return fmt.Errorf("storm: MQTT subscriber: subscribe: %v", tok.Error())
	}
	go func() {
		<-ctx.Done()
		c.Disconnect(250)
	}()
	return nil
}

// stream reads the console's event stream (server-sent events), counting
// events and the overflows it reports.
func (s *storm) stream(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/api/v1/events", s.cfg.Server, s.cfg.HTTPPort), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(s.cfg.APIUser, s.cfg.APIPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("storm: event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("storm: event stream: %s", resp.Status)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "event: overflow":
				s.progress.overflows.Add(1)
			case strings.HasPrefix(line, "id: "):
				s.progress.stream.Add(1)
			}
		}
	}()
	return nil
}
