"""A client of Bashu's admin API in another language, with no copy of Bashu's .proto files:
it learns the services and messages from the server's gRPC reflection, then calls them.

Usage: admin_client.py <host:port> <staff token>. Prints one JSON object with what it saw.
"""

import json
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def method_caller(channel, pool, service_name, method_name):
    service = pool.FindServiceByName(service_name)
    method = service.methods_by_name[method_name]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return request_class, call


def main():
    endpoint, token = sys.argv[1], sys.argv[2]
    bearer = [("authorization", f"Bearer {token}")]
    seen = {}
    with grpc.insecure_channel(endpoint) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        seen["services"] = sorted(database.get_services())
        pool = DescriptorPool(database)

        request, list_counties = method_caller(channel, pool, "bashu.admin.v1.RegistryService", "ListCounties")
        chongqing = list_counties(request(within="50"), metadata=bearer, timeout=10)
        seen["chongqing_units"] = len(chongqing.counties)
        seen["first_chongqing_unit"] = json_format.MessageToDict(chongqing.counties[0])
        try:
            list_counties(request(within="50"), timeout=10)
            seen["without_token"] = "OK"
        except grpc.RpcError as refused:
            seen["without_token"] = refused.code().name

        request, get_county = method_caller(channel, pool, "bashu.admin.v1.RegistryService", "GetCounty")
        try:
            get_county(request(code="999999"), metadata=bearer, timeout=10)
            seen["unknown_county"] = "OK"
        except grpc.RpcError as refused:
            seen["unknown_county"] = refused.code().name

        request, check = method_caller(channel, pool, "grpc.health.v1.Health", "Check")
        health = check(request(service="bashu.admin.v1.RegistryService"), timeout=10)
        seen["health"] = json_format.MessageToDict(health)["status"]
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
