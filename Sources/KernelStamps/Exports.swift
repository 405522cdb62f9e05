// The plain values KernelStamps takes and returns (addresses, clock status, errors) live in
// KernelValues, which pure modules import on their own; every user of the syscall layer gets
// them with it.
@_exported import KernelValues
