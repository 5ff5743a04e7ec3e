/// A user-space pointer argument, recorded by what it pointed at rather than
/// by its value: replay must never dereference a host address from another
/// process. Replay recreates a pointer of the same class (its own anonymous
/// memory, NULL, an unmapped page, a kernel address, a read-only page).
public struct UserPointer: Equatable, Hashable, Sendable {
    /// What the pointer referred to when the call was made.
    public enum Class: UInt8, Sendable, CaseIterable {
        /// `NULL`.
        case null = 0
        /// Readable and writable user memory.
        case valid = 1
        /// A user address with nothing mapped there (`copy_*_user` faults: EFAULT).
        case unmapped = 2
        /// An address above the user range (`access_ok()` fails: EINVAL on the
        /// dirty-bitmap paths: check G4 of `docs/kernel-rules.md#dirty-pages-ioctl`,
        /// rule `ioctl.get-kernel-pointer`).
        case kernel = 3
        /// Readable but not writable user memory (`copy_from_user` works,
        /// `copy_to_user` faults).
        case readOnly = 4

        public var name: String {
            switch self {
            case .null: "null"
            case .valid: "valid"
            case .unmapped: "unmapped"
            case .kernel: "kernel"
            case .readOnly: "readonly"
            }
        }

        public init?(name: String) {
            guard let c = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = c
        }
    }

    public var pointerClass: Class
    /// The pointer's value modulo the trace's page size. Alignment checks
    /// (`vaddr & (pgsize - 1)`) depend on it, so replay keeps it.
    public var pageOffset: UInt64
    /// For `.valid` and `.readOnly`: how many bytes from the pointer are
    /// accessible before a fault; `nil` when the whole buffer the call
    /// declared was accessible. Lets a trace express a bitmap buffer that
    /// crosses into an unmapped page part-way (EFAULT part-way,
    /// rule `bitmap.fault-part-way`).
    public var accessibleBytes: UInt64?

    public init(_ pointerClass: Class, pageOffset: UInt64 = 0, accessibleBytes: UInt64? = nil) {
        self.pointerClass = pointerClass
        self.pageOffset = pageOffset
        self.accessibleBytes = accessibleBytes
    }

    public static let valid = UserPointer(.valid)
    public static let null = UserPointer(.null)
}
