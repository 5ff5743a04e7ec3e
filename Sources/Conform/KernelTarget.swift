import Replay
import Trace

extension ConformRunner.Target {
    /// Conformance on this machine's kernel: the same real groups for every
    /// rule, a fresh backend each; each rule's variant is picked by the
    /// profile the kernel's release maps to. Rules with emulated groups
    /// need one of the groups to hold the vfiotrace_pin test device.
    public static func kernel(groups: [String], devices: [String],
                              pinBudget: UInt64 = RealVFIOBackend.defaultPinBudget) throws(BackendSetupError) -> Self {
        let probe = try RealVFIOBackend.open(groups: groups, devices: devices, traceKinds: [:], pinBudget: pinBudget)
        let nodes = probe.groups
        return Self(name: "vfio:\(probe.kernelRelease)",
                    profile: KernelProfile.forKernelRelease(probe.kernelRelease) ?? .latest,
                    hasPinningDevice: nodes.contains { RealVFIOBackend.isEmulatedGroup($0) }) { events in
            .success(RealVFIOBackend(groups: nodes, traceKinds: RealVFIOBackend.traceGroupKinds(events), pinBudget: pinBudget))
        }
    }
}
