"""Pure feature, bar and book math: no Faust, no Kafka, no clock. The agents wire these to topics."""
