def test_investigator_creates_and_reads_a_case(api, world):
    created = api.post("/api/v1/cases/", {"title": "Antimony ring", "classification": "confidential",
                                          "commodities": ["antimony"]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["reference"].startswith("SSB-")
    assert body["unit"] == "econ"
    detail = api.get(f"/api/v1/cases/{body['id']}/")
    assert detail.status_code == 200
    assert detail["ETag"] == '"1"'
