"""HTTP for billing: the compute catalogue."""

from rest_framework import generics, serializers

from accounts.permissions import RoleAllows
from billing.models import ComputeSpec


class ComputeSpecOut(serializers.ModelSerializer):
    class Meta:
        model = ComputeSpec
        fields = ["id", "name", "kind", "gpu_model", "gpu_count", "cpu_cores", "memory_gib",
                  "price_per_hour", "currency"]


class ComputeSpecListView(generics.ListAPIView):
    """Active specs, cheapest first within each kind (the catalogue is small: one page)."""

    resource = "spec"
    permission_classes = [RoleAllows]
    serializer_class = ComputeSpecOut
    queryset = ComputeSpec.objects.filter(active=True)

    def list(self, request, *args, **kwargs):  # noqa: ANN001, ANN201
        from rest_framework.response import Response

        return Response({"results": self.get_serializer(self.get_queryset(), many=True).data,
                         "next": None})
