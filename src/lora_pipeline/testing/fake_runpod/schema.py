"""The subset of RunPod's GraphQL schema that the fake serves (research/runpod.md §4.2).

Every request is parsed and validated against it, so a mutation that the real API would refuse for a
syntax error (an unescaped quote) or an unknown input field (``interruptible``) is refused here too, with
the same HTTP 400 shape. Input fields are nullable where the real API is lenient (``dataCenterId: null``).
Type and field names follow what runpod-python 1.12.0, runpodctl and RunPod's docs send and read; fields
nobody in this project sends stay out, so that their use fails loudly instead of passing unverified.
"""

from __future__ import annotations

from graphql import GraphQLSchema, build_schema

SDL = """
scalar Void

enum CloudTypeEnum { ALL SECURE COMMUNITY }
enum PodStatus { CREATED RUNNING RESTARTING EXITED PAUSED DEAD TERMINATED }

input EnvironmentVariableInput { key: String! value: String! }

input PodFindAndDeployOnDemandInput {
  name: String
  imageName: String
  gpuTypeId: String
  cloudType: CloudTypeEnum
  gpuCount: Int
  volumeInGb: Int
  containerDiskInGb: Int
  minVcpuCount: Int
  minMemoryInGb: Int
  minDownload: Int
  minUpload: Int
  startSsh: Boolean
  startJupyter: Boolean
  supportPublicIp: Boolean
  dataCenterId: String
  countryCode: String
  dockerArgs: String
  ports: String
  volumeMountPath: String
  env: [EnvironmentVariableInput]
  templateId: String
  networkVolumeId: String
  allowedCudaVersions: [String]
  minCudaVersion: String
  containerRegistryAuthId: String
  stopAfter: String
  terminateAfter: String
}

input DeployCpuPodInput {
  name: String
  imageName: String
  cloudType: CloudTypeEnum
  instanceId: String
  volumeInGb: Int
  containerDiskInGb: Int
  minDownload: Int
  minUpload: Int
  startSsh: Boolean
  dataCenterId: String
  countryCode: String
  dockerArgs: String
  ports: String
  volumeMountPath: String
  env: [EnvironmentVariableInput]
  templateId: String
  networkVolumeId: String
  containerRegistryAuthId: String
  deployCost: Float
  stopAfter: String
  terminateAfter: String
}

input PodFilter { podId: String! }
input PodStopInput { podId: String! }
input PodResumeInput { podId: String! gpuCount: Int! allowedCudaVersions: [String] }
input PodTerminateInput { podId: String! }
input GpuTypeFilter { id: String }
input GpuLowestPriceInput { gpuCount: Int! secureCloud: Boolean }
input UpdateUserSettingsInput { pubKey: String }

type PodRuntimePort { ip: String isIpPublic: Boolean privatePort: Int publicPort: Int type: String }
type PodRuntimeGpu { id: String gpuUtilPercent: Float memoryUtilPercent: Float }
type PodRuntimeContainer { cpuPercent: Float memoryPercent: Float }
type PodRuntime {
  uptimeInSeconds: Int
  ports: [PodRuntimePort]
  gpus: [PodRuntimeGpu]
  container: PodRuntimeContainer
}

type Machine { podHostId: String gpuDisplayName: String gpuTypeId: String dataCenterId: String location: String }

type Pod {
  id: String!
  name: String
  imageName: String
  podType: String
  desiredStatus: PodStatus
  lastStatusChange: String
  runtime: PodRuntime
  uptimeSeconds: Int
  costPerHr: Float
  adjustedCostPerHr: Float
  env: [String]
  machineId: String
  machine: Machine
  gpuCount: Int
  vcpuCount: Float
  memoryInGb: Float
  containerDiskInGb: Int
  volumeInGb: Float
  volumeMountPath: String
  dockerArgs: String
  dockerId: String
  port: Int
  ports: String
  createdAt: String
  lastStartedAt: String
}

type LowestPrice {
  minimumBidPrice: Float
  uninterruptablePrice: Float
  stockStatus: String
  availableGpuCounts: [Int]
}

type GpuType {
  id: String!
  displayName: String
  manufacturer: String
  memoryInGb: Int
  maxGpuCount: Int
  cudaCores: Int
  secureCloud: Boolean
  communityCloud: Boolean
  securePrice: Float
  communityPrice: Float
  oneMonthPrice: Float
  threeMonthPrice: Float
  oneWeekPrice: Float
  communitySpotPrice: Float
  secureSpotPrice: Float
  lowestPrice(input: GpuLowestPriceInput): LowestPrice
}

type NetworkVolume { id: String name: String size: Int dataCenterId: String }
type EnvironmentVariable { key: String value: String }

type Endpoint {
  id: String
  aiKey: String
  name: String
  gpuIds: String
  gpuCount: Int
  idleTimeout: Int
  locations: String
  networkVolumeId: String
  networkVolume: NetworkVolume
  scalerType: String
  scalerValue: Int
  templateId: String
  type: String
  userId: String
  version: Int
  workersMax: Int
  workersMin: Int
  workersStandby: Int
  env: [EnvironmentVariable]
  createdAt: String
}

type User {
  id: String
  pubKey: String
  clientBalance: Float
  currentSpendPerHr: Float
  spendLimit: Float
  networkVolumes: [NetworkVolume]
  pods: [Pod]
  endpoints: [Endpoint]
}

type Query {
  myself: User
  pod(input: PodFilter!): Pod
  gpuTypes(input: GpuTypeFilter): [GpuType]
}

type Mutation {
  podFindAndDeployOnDemand(input: PodFindAndDeployOnDemandInput): Pod
  deployCpuPod(input: DeployCpuPodInput): Pod
  podStop(input: PodStopInput!): Pod
  podResume(input: PodResumeInput!): Pod
  podTerminate(input: PodTerminateInput!): Void
  updateUserSettings(input: UpdateUserSettingsInput): User
}
"""

SCHEMA: GraphQLSchema = build_schema(SDL)
"""Built once at import; graphql-core schemas are immutable and safe to share between threads."""

__all__ = ["SCHEMA", "SDL"]
