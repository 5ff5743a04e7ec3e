import Trace

/// Something a trace can be replayed against: the bitmap engine, real VFIO,
/// or a wrapper around either. Every check runs through this one seam.
///
/// A backend receives each event with its inputs as recorded (file
/// descriptors in the trace's numbering; a backend that opens real files
/// translates them) and returns the same event with the outcome fields set
/// to what it observed.
public protocol Backend: AnyObject {
    /// A short name for reports: `engine:5.12`, `vfio:6.1.0-27-amd64`.
    var name: String { get }
    func perform(_ event: Event) -> Performed
    /// Releases what the backend holds (real fds and mappings); the
    /// backend is not used after it.
    func close()
}

extension Backend {
    public func close() {}

    /// The outcome of every event, in order, then ``close()``: what
    /// bisecting compares between profiles or kernels.
    public func outcomes(of events: [Event]) -> [Event] {
        defer { close() }
        return events.map { perform($0).event }
    }
}

/// One event as a backend performed it.
public struct Performed: Sendable, Equatable {
    /// The event's inputs with this backend's outcome.
    public var event: Event
    /// What else the backend has to say about this event.
    public var notes: [BackendNote]

    public init(_ event: Event, notes: [BackendNote] = []) {
        self.event = event
        self.notes = notes
    }
}

/// Something a backend reports about an event besides its outcome.
public enum BackendNote: Sendable, Equatable, CustomStringConvertible {
    /// The backend could not perform this event here (no such group or
    /// device, no pinning device, no memory); its outcome fields are left
    /// empty. A replay with such events is not a valid comparison.
    case notReplayed(String)
    /// The backend does not model this kind of event at all (an ioctl
    /// vfiotrace does not decode); it is skipped, not compared.
    case notModelled(String)
    /// The modelled kernel would crash or corrupt memory here (for example
    /// `kfree` of a vmalloc'd bitmap before 5.17, or v16's NULL dereference
    /// on an unmap with no mapping). The outcome is the engine's best guess.
    case hazard(String)
    /// The kernel leaves this outcome field undefined (uninitialised stack
    /// bytes); it must not be compared.
    case unspecified(OutcomeField)

    public var description: String {
        switch self {
        case .notReplayed(let s): "not replayed: \(s)"
        case .notModelled(let s): "not modelled: \(s)"
        case .hazard(let s): "kernel hazard: \(s)"
        case .unspecified(let f): "unspecified: \(f.rawValue)"
        }
    }
}

/// An outcome field a backend can declare undefined.
public enum OutcomeField: String, Sendable, Equatable {
    /// Bytes 12..15 of the migration capability before 6.6 (cd24e2a60af6,
    /// `docs/kernel-rules.md#delta-d8`).
    case migrationCapHole = "migration capability bytes 12..15"
}

extension OutcomeField {
    /// The fields a comparison of two traces must leave out: what either
    /// trace's kernel leaves undefined (the migration capability's bytes
    /// 12..15 unless both kernels zero them, 6.6+ and stable backports).
    public static func undefined(comparing a: TraceHeader, _ b: TraceHeader) -> Set<OutcomeField> {
        var out: Set<OutcomeField> = []
        for h in [a, b] where KernelProfile.forKernelRelease(h.kernelRelease)?.migrationCapHoleZeroed != true {
            out.insert(.migrationCapHole)
        }
        return out
    }
}
