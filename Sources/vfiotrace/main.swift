print("vfiotrace")
