package examples

import (
	"fmt"
	"time"

	restate "github.com/restatedev/sdk-go"
)

// DefaultReminderDelay is used when an Order does not say how long to wait before the
// reminder; short, so tests observe the delayed message without long waits.
const DefaultReminderDelay = 500 * time.Millisecond

// Order is the input of Orders.place.
type Order struct {
	Customer string `json:"customer"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	// ReminderDelayMs delays the follow-up reminder; 0 means DefaultReminderDelay.
	ReminderDelayMs int64 `json:"reminderDelayMs,omitempty"`
}

// Receipt is the output of Orders.place.
type Receipt struct {
	OrderID string `json:"orderId"`
	SKU     string `json:"sku"`
	// SoldTotal is the Counter/<sku> value after this order was added to it.
	SoldTotal int64 `json:"soldTotal"`
	// ReminderAt is when the delayed reminder was scheduled for (RFC 3339, milliseconds).
	ReminderAt string `json:"reminderAt"`
}

// Reminder is the message Orders.place sends, delayed, to Reminders.remind.
type Reminder struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Text     string `json:"text"`
}

// Orders is a service that drives the engine's call paths: a durable side effect, a
// request-response call to a virtual object and a delayed one-way send.
func Orders() restate.ServiceDefinition {
	return restate.NewService("Orders").
		Handler("place", restate.NewServiceHandler(placeOrder))
}

// Reminders receives the delayed messages that Orders.place sends.
func Reminders() restate.ServiceDefinition {
	return restate.NewService("Reminders").
		Handler("remind", restate.NewServiceHandler(remind))
}

func placeOrder(ctx restate.Context, o Order) (Receipt, error) {
	if o.SKU == "" || o.Quantity <= 0 {
		return Receipt{}, restate.ToTerminalError(fmt.Errorf("order needs a sku and a positive quantity, got %+v", o), restate.WithErrorCode(400))
	}
	// The id comes from a side effect so it is generated once and replayed afterwards.
	orderID, err := restate.Run(ctx, func(restate.RunContext) (string, error) {
		n := OrderIDsIssued.Add(1)
		return fmt.Sprintf("order-%d-%d", time.Now().UnixNano(), n), nil
	})
	if err != nil {
		return Receipt{}, err
	}
	sold, err := restate.Object[int64](ctx, "Counter", o.SKU, "add").Request(o.Quantity)
	if err != nil {
		return Receipt{}, err
	}
	delay := DefaultReminderDelay
	if o.ReminderDelayMs > 0 {
		delay = time.Duration(o.ReminderDelayMs) * time.Millisecond
	}
	// The schedule time is itself nondeterministic, so it goes through Run as well.
	reminderAt, err := restate.Run(ctx, func(restate.RunContext) (string, error) {
		return time.Now().Add(delay).UTC().Format("2006-01-02T15:04:05.000Z07:00"), nil
	})
	if err != nil {
		return Receipt{}, err
	}
	restate.ServiceSend(ctx, "Reminders", "remind").Send(Reminder{
		OrderID:  orderID,
		Customer: o.Customer,
		Text:     fmt.Sprintf("%d x %s are on their way", o.Quantity, o.SKU),
	}, restate.WithDelay(delay))
	return Receipt{OrderID: orderID, SKU: o.SKU, SoldTotal: sold, ReminderAt: reminderAt}, nil
}

func remind(_ restate.Context, r Reminder) (string, error) {
	recordReminder(r)
	return fmt.Sprintf("reminded %s about %s", r.Customer, r.OrderID), nil
}
