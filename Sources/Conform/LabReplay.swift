import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Replays a trace on a real kernel in the VM lab (`scripts/vm-lab`) and
/// reads back the outcomes the guest recorded: `bisect --kernels`.
public struct LabReplay {
    /// The checkout holding `scripts/vm-lab` and a release build of
    /// vfiotrace (`.build/release/vfiotrace`), which runs in the guest.
    public let root: String
    /// Where each kernel's run writes its results, one directory a kernel.
    public let outputDirectory: String

    public init(root: String, outputDirectory: String) {
        self.root = root
        self.outputDirectory = outputDirectory
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The outcomes of `trace` on `kernel` (a lab kernel name such as 6.1,
    /// or a bzImage path). The lab's own output goes to standard error.
    public func outcomes(of trace: String, on kernel: String) throws(Failure) -> [Event] {
        // One directory per kernel: reading the recording back must find
        // this kernel's, not an earlier one's.
        let dir = outputDirectory + "/" + String(kernel.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" })
        let absTrace = Posix.absolutePath(trace)
        let guest = "\(root)/.build/release/vfiotrace replay \(Self.shellQuote(absTrace)) --backend kernel --group $VFIO_GROUP --group \"$VFIO_MDEV_GROUP\" -o $VMLAB_OUT/bisect.vft > /dev/null; test -f $VMLAB_OUT/bisect.vft"
        let kernelArg = kernel.contains("/") ? Self.shellQuote(kernel) : kernel
        let cmd = "\(Self.shellQuote(root))/scripts/vm-lab --kernel \(kernelArg) --out \(Self.shellQuote(dir)) -- sh -c \(Self.shellQuote(guest)) >&2"
        guard system(cmd) == 0 else { throw Failure(description: "the VM lab could not replay \(trace) on \(kernel) (see \(dir))") }
        guard let names = directoryEntries(dir) else { throw Failure(description: "\(dir): no results") }
        for name in names {
            let path = "\(dir)/\(name)/bisect.vft"
            guard access(path, R_OK) == 0 else { continue }
            do throws(InputError) { return try EventInput.open(path).readAll() } catch {
                throw Failure(description: error.description)
            }
        }
        throw Failure(description: "\(dir): the guest wrote no recording")
    }

    /// `s` as one word for `sh`.
    public static func shellQuote(_ s: String) -> String {
        "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
