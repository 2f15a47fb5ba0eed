package ids

const subscriptionResource = "sub"

// ParseSubscriptionID decodes a "sub_1…" id (a Kafka subscription's) into its 16-byte ULID.
func ParseSubscriptionID(s string) ([16]byte, error) {
	return parseULIDID(s, subscriptionResource)
}
