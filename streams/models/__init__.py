"""Signal models behind one small interface (:class:`streams.models.base.SignalModel`)."""
