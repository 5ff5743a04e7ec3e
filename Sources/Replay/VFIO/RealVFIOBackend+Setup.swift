import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Why the real-VFIO backend could not be set up, naming the node or the
/// option at fault.
public struct BackendSetupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension RealVFIOBackend {
    /// The backend for `--group` values (`/dev/vfio/N`, or `TRACE=/dev/vfio/N`
    /// binding trace group TRACE to that node) and `--device` values (a PCI
    /// address whose IOMMU group to use). Every node must be readable and
    /// writable before anything runs. An empty group value (a shell
    /// variable such as `$VFIO_MDEV_GROUP` in a guest without the test
    /// device) names nothing.
    public static func open(groups: [String], devices: [String], traceKinds: [UInt32: GroupKind],
                            pinBudget: UInt64 = defaultPinBudget) throws(BackendSetupError) -> RealVFIOBackend {
        var nodes: [String] = []
        var bindings: [UInt32: String] = [:]
        for g in groups where !g.isEmpty {
            if let eq = g.firstIndex(of: "="), let n = UInt32(g[..<eq]) {
                bindings[n] = String(g[g.index(after: eq)...])
            } else {
                nodes.append(g)
            }
        }
        for d in devices {
            guard let node = IOMMUGroups.node(ofPCIDevice: d) else {
                throw BackendSetupError("--device \(d): no such PCI device with an IOMMU group (is the IOMMU on?)")
            }
            nodes.append(node)
        }
        for node in nodes + bindings.values.sorted() where access(node, R_OK | W_OK) != 0 {
            throw BackendSetupError("\(node): \(String(cString: strerror(errno))) (is the device bound to vfio-pci, and are you root?)")
        }
        return RealVFIOBackend(groups: nodes, bindings: bindings, traceKinds: traceKinds, pinBudget: pinBudget)
    }

    /// The kind each trace group of `input` is attached as, read in a first
    /// pass over its opens and SET_CONTAINERs (the real backend binds trace
    /// groups to real ones by kind before the replay starts). A damaged
    /// trace is refused here, before anything reaches the kernel.
    public static func traceGroupKinds(of input: EventInput) throws(InputError) -> [UInt32: GroupKind] {
        var events = try input.events()
        var relevant: [Event] = []
        while let e = try events.next() {
            switch e.body {
            case .open, .groupSetContainer: relevant.append(e)
            default: break
            }
        }
        if let p = events.problems.first { throw .damaged(path: input.path, p) }
        return traceGroupKinds(relevant)
    }
}
